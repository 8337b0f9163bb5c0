-- The district layer as one GeoJSON FeatureCollection, built in the database.
SELECT json_build_object(
    'type', 'FeatureCollection',
    'features', coalesce(json_agg(f.feature ORDER BY f.code), '[]'::json)
)::text AS body
FROM (
    SELECT c.code, json_build_object(
        'type', 'Feature',
        'id', c.code,
        'geometry', ST_AsGeoJSON(c.geom, 7)::json,
        'properties', json_build_object(
            'code', c.code, 'name', c.name, 'name_en', c.name_en,
            'population', c.population, 'area_m2', round(c.area_m2::numeric, 1)
        )
    ) AS feature
    FROM cells c
    WHERE c.layer = 'district'
) f
