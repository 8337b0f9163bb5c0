-- A warning area as one valid MultiPolygon: the union of its polygons (already checked valid),
-- named districts, cells of one layer, and CAP geocodes that are a district or the whole city
-- (a code like 320100 is the city whose districts start 3201). With it: whether it reaches the
-- city, and every code that named nothing.
WITH parts AS (
    SELECT ST_SetSRID(ST_GeomFromGeoJSON(p), 4326) AS g FROM unnest(%(polygons)s::text[]) AS p
    UNION ALL
    SELECT c.geom FROM cells c
    WHERE c.layer = 'district'
      AND (c.code = ANY(%(districts)s::text[]) OR c.code = ANY(%(geocodes)s::text[])
           OR left(c.code, 4) || '00' = ANY(%(geocodes)s::text[]))
    UNION ALL
    SELECT c.geom FROM cells c WHERE c.layer = %(layer)s::text AND c.code = ANY(%(cells)s::text[])
),
merged AS (
    -- The union dissolves shared edges (adjacent cells, overlapping CAP polygons) into a valid area.
    SELECT ST_Multi(ST_CollectionExtract(ST_Union(g), 3)) AS g FROM parts
)
SELECT m.g AS area,
       -- The districts the area is made of, when it is made of nothing else.
       CASE WHEN cardinality(%(polygons)s::text[]) = 0 AND cardinality(%(cells)s::text[]) = 0 THEN
           ARRAY(SELECT c.code FROM cells c
                 WHERE c.layer = 'district'
                   AND (c.code = ANY(%(districts)s::text[]) OR c.code = ANY(%(geocodes)s::text[])
                        OR left(c.code, 4) || '00' = ANY(%(geocodes)s::text[]))
                 ORDER BY c.code)
       END AS only_districts,
       m.g IS NULL OR ST_IsEmpty(m.g) AS empty,
       m.g IS NOT NULL AND EXISTS (
           SELECT 1 FROM city_parts p WHERE p.geom && m.g AND ST_Intersects(p.geom, m.g)) AS inside,
       round((ST_Area(m.g::geography) / 1e6)::numeric, 1)::float8 AS area_km2,
       ARRAY(SELECT d FROM unnest(%(districts)s::text[]) AS d
             WHERE NOT EXISTS (SELECT 1 FROM cells c WHERE c.layer = 'district' AND c.code = d)) AS unknown_districts,
       ARRAY(SELECT x FROM unnest(%(cells)s::text[]) AS x
             WHERE NOT EXISTS (SELECT 1 FROM cells c WHERE c.layer = %(layer)s::text AND c.code = x)) AS unknown_cells,
       ARRAY(SELECT x FROM unnest(%(geocodes)s::text[]) AS x
             WHERE NOT EXISTS (SELECT 1 FROM cells c WHERE c.layer = 'district'
                               AND (c.code = x OR left(c.code, 4) || '00' = x))) AS ignored_geocodes
FROM merged m
