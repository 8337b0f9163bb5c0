-- Whether a GeoJSON geometry touches the city (the subdivided outline: one index probe).
SELECT EXISTS (
    SELECT 1
    FROM city_parts p, (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(geometry)s), 4326) AS g) x
    WHERE p.geom && x.g AND ST_Intersects(p.geom, x.g)
) AS inside
