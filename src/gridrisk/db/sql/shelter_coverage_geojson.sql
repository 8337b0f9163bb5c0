-- The coverage of one layer as a GeoJSON FeatureCollection text: each cell's outline with its
-- population, capacity, ratio and shortfall, for a map to paint the gaps. The marker in `cov` is
-- replaced by shelter_coverage.sql (one row per cell).
WITH cov AS MATERIALIZED (
/*coverage*/
)
SELECT json_build_object(
    'type', 'FeatureCollection',
    'layer', %(layer)s::text,
    'numberReturned', (SELECT count(*) FROM cov),
    'features', (
        SELECT coalesce(json_agg(json_build_object(
            'type', 'Feature',
            'id', c.code,
            'geometry', ST_AsGeoJSON(g.geom, %(precision)s)::json,
            'properties', json_build_object(
                'code', c.code, 'name', c.name, 'district_code', c.district_code,
                'population', c.population,
                'capacity', round(c.capacity::numeric, 1),
                'ratio', CASE WHEN c.population > 0 THEN round((c.capacity / c.population)::numeric, 4) END,
                'shortfall', round(greatest(0, c.population - c.capacity)::numeric),
                'by_class', (SELECT json_object_agg(e.key, round(e.value::numeric, 1) ORDER BY e.key)
                             FROM jsonb_each_text(c.by_class) e),
                'shelters', c.shelter_ids)
        ) ORDER BY c.code), '[]'::json)
        FROM cov c
        JOIN cells g ON g.id = c.id
    )
)::text AS body
