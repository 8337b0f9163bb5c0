-- The district a geometry lies in: the district cell holding its point on surface (for a point,
-- the point itself); on a shared edge the smallest code wins, as for the cell assignment.
SELECT c.code
FROM (SELECT ST_PointOnSurface(ST_SetSRID(ST_GeomFromGeoJSON(%(geometry)s), 4326)) AS g) x
JOIN cell_pieces p ON p.layer = 'district' AND p.geom && x.g AND ST_Intersects(p.geom, x.g)
JOIN cells c ON c.id = p.cell_id
ORDER BY c.code
LIMIT 1
