-- Lock the active depots holding any of %(items)s, in id order; their point and stock.
SELECT d.id, d.stock, ST_X(ST_PointOnSurface(d.geom)) AS lon, ST_Y(ST_PointOnSurface(d.geom)) AS lat
FROM supply_depots d
WHERE d.status = 'active' AND d.stock ?| %(items)s::text[]
ORDER BY d.id
FOR UPDATE
