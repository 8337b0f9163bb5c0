-- One page of a layer's cells as GeoJSON features (with workers), plus the total that match.
WITH matched AS (
    SELECT c.*
    FROM cells c
    WHERE c.layer = %(layer)s
      AND (%(bbox)s::float8[] IS NULL
           OR c.geom && ST_MakeEnvelope(%(bbox)s[1], %(bbox)s[2], %(bbox)s[3], %(bbox)s[4], 4326))
),
page AS (
    SELECT * FROM matched ORDER BY code LIMIT %(limit)s OFFSET %(offset)s
)
SELECT (SELECT count(*) FROM matched) AS matched,
       coalesce(json_agg(json_build_object(
           'type', 'Feature',
           'id', p.code,
           'geometry', ST_AsGeoJSON(p.geom, 7)::json,
           'properties', json_build_object(
               'layer', p.layer, 'code', p.code, 'name', p.name,
               'area_m2', round(p.area_m2::numeric, 1), 'population', p.population,
               'district_code', p.district_code, 'street_code', p.street_code,
               'community_code', p.community_code,
               'workers', (SELECT coalesce(json_agg(json_build_object('name', w.name, 'phone', w.phone)
                                                    ORDER BY w.id), '[]'::json)
                           FROM cell_workers w WHERE w.layer = p.layer AND w.cell_code = p.code)
           )
       ) ORDER BY p.code), '[]'::json)::text AS features
FROM page p
