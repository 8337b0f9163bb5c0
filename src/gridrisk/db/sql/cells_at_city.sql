-- The city outline's parts that decide inside_city in cells_at.sql, as WKB.
SELECT ST_AsBinary(geom) AS wkb FROM city_parts
