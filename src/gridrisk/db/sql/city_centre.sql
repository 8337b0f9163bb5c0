-- The middle of the city outline's bounds (lon, lat): where its metric CRS should be centred.
SELECT (ST_XMin(b) + ST_XMax(b)) / 2, (ST_YMin(b) + ST_YMax(b)) / 2
FROM (SELECT ST_Extent(geom)::box2d AS b FROM city_parts) e
