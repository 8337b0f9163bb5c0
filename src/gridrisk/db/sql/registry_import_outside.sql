-- Staged import rows outside the city: (row, problem, where). The city test uses the subdivided
-- outline: one index probe against a few vertices per row.
SELECT s.row_no,
       'The location is outside the city (check lon/lat order and that they are WGS 84).',
       ST_AsText(ST_PointOnSurface(s.geom), 7)
FROM import_stage s
WHERE NOT EXISTS (SELECT 1 FROM city_parts p WHERE p.geom && s.geom AND ST_Intersects(p.geom, s.geom))
ORDER BY s.row_no
