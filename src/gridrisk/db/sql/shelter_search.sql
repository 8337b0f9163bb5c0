-- The ids of the shelters matching the filters (one page, by id), and how many match in all.
WITH matched AS (
    SELECT s.id
    FROM shelters s
    WHERE (%(bbox)s::float8[] IS NULL
           OR s.geom && ST_MakeEnvelope(%(bbox)s[1], %(bbox)s[2], %(bbox)s[3], %(bbox)s[4], 4326))
      AND (%(class)s::text IS NULL OR s.class = %(class)s)
      AND (%(status)s::text IS NULL OR s.status = %(status)s)
      AND (%(district)s::text IS NULL OR s.district_code = %(district)s)
      AND (%(min_free)s::int IS NULL
           OR (s.status <> 'closed' AND s.capacity - s.occupancy >= %(min_free)s))
      AND (%(q)s::text IS NULL OR s.name ILIKE %(q)s OR s.code ILIKE %(q)s OR s.address ILIKE %(q)s
           OR s.managing_unit ILIKE %(q)s)
)
SELECT (SELECT count(*) FROM matched) AS matched,
       coalesce((SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM matched ORDER BY id
                 LIMIT %(limit)s OFFSET %(offset)s) p), '{}') AS ids
