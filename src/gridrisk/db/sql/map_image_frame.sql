-- What a map image frames: the bounds of %(bbox)s, of the district %(district)s, or of the whole
-- layer (minx, miny, maxx, maxy), with the layer's title, the district's name and the city's.
WITH b AS (
    SELECT coalesce(
               CASE WHEN %(bbox)s::float8[] IS NOT NULL THEN
                   ST_MakeEnvelope(%(bbox)s[1], %(bbox)s[2], %(bbox)s[3], %(bbox)s[4], 4326)::box2d END,
               (SELECT ST_Extent(geom) FROM cells WHERE layer = 'district' AND code = %(district)s),
               (SELECT ST_Extent(geom) FROM cells WHERE layer = %(layer)s)) AS box
)
SELECT ST_XMin(b.box) AS minx, ST_YMin(b.box) AS miny, ST_XMax(b.box) AS maxx, ST_YMax(b.box) AS maxy,
       (SELECT title FROM layers WHERE name = %(layer)s) AS layer_title,
       (SELECT name FROM cells WHERE layer = 'district' AND code = %(district)s) AS district_name,
       (SELECT name FROM city_profile) AS city
FROM b
