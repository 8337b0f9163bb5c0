-- One GeoJSON part of a warning area, checked before anything is written: its type, whether it
-- is empty, and whether it is valid (with PostGIS's reason and location when it is not).
SELECT GeometryType(g) AS type, ST_IsEmpty(g) AS empty, ST_IsValid(g) AS valid, ST_IsValidReason(g) AS reason
FROM (SELECT ST_SetSRID(ST_GeomFromGeoJSON(%(geometry)s), 4326) AS g) x
