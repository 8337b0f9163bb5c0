-- The ids of the risk sources matching the filters (one page), and how many match in all.
WITH matched AS (
    SELECT s.id
    FROM risk_sources s
    WHERE (%(bbox)s::float8[] IS NULL
           OR s.geom && ST_MakeEnvelope(%(bbox)s[1], %(bbox)s[2], %(bbox)s[3], %(bbox)s[4], 4326))
      AND (%(category)s::text IS NULL OR s.category = %(category)s)
      AND (%(level)s::text IS NULL OR s.level = %(level)s)
      AND (%(status)s::text IS NULL OR s.status = %(status)s)
      AND (%(q)s::text IS NULL OR s.name ILIKE %(q)s OR s.code ILIKE %(q)s
           OR s.address ILIKE %(q)s OR s.enterprise ILIKE %(q)s)
      AND (%(cell_id)s::bigint IS NULL
           OR EXISTS (SELECT 1 FROM source_cells sc WHERE sc.source_id = s.id AND sc.cell_id = %(cell_id)s))
)
SELECT (SELECT count(*) FROM matched) AS matched,
       coalesce((SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM matched ORDER BY id
                 LIMIT %(limit)s OFFSET %(offset)s) p), '{}') AS ids
