-- Lock the available teams with any of %(capabilities)s, in id order (every matching locks them so:
-- two warnings matched at once queue here and never book one team twice); their base point.
SELECT t.id, t.capabilities, ST_X(ST_PointOnSurface(t.geom)) AS lon, ST_Y(ST_PointOnSurface(t.geom)) AS lat
FROM rescue_teams t
WHERE t.status = 'available' AND t.capabilities && %(capabilities)s::text[]
ORDER BY t.id
FOR UPDATE
