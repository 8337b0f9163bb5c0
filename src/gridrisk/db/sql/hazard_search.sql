-- The ids of the hazard points matching the filters (one page, by id), and how many match in all.
WITH matched AS (
    SELECT h.id
    FROM hazard_points h
    WHERE (%(bbox)s::float8[] IS NULL
           OR h.geom && ST_MakeEnvelope(%(bbox)s[1], %(bbox)s[2], %(bbox)s[3], %(bbox)s[4], 4326))
      AND (%(kind)s::text IS NULL OR h.kind = %(kind)s)
      AND (%(status)s::text IS NULL OR h.status = %(status)s)
      AND (%(level)s::text IS NULL OR h.level = %(level)s)
      AND (%(district)s::text IS NULL OR h.district_code = %(district)s)
      AND (%(q)s::text IS NULL OR h.name ILIKE %(q)s OR h.code ILIKE %(q)s OR h.address ILIKE %(q)s
           OR h.responsible_person ILIKE %(q)s OR h.responsible_unit ILIKE %(q)s)
      AND (%(cell_id)s::bigint IS NULL
           OR EXISTS (SELECT 1 FROM hazard_cells hc WHERE hc.hazard_id = h.id AND hc.cell_id = %(cell_id)s))
)
SELECT (SELECT count(*) FROM matched) AS matched,
       coalesce((SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM matched ORDER BY id
                 LIMIT %(limit)s OFFSET %(offset)s) p), '{}') AS ids
