-- The city outline is the union of the districts, stored subdivided for cheap containment tests.
WITH gone AS (DELETE FROM city_parts)
INSERT INTO city_parts (geom)
SELECT ST_Subdivide(u.geom, 128)
FROM (SELECT ST_Union(geom) AS geom FROM cells WHERE layer = 'district') u
WHERE u.geom IS NOT NULL
