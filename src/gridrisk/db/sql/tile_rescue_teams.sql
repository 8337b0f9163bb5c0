-- One MVT tile of rescue teams, `deployed` while booked. Feature id = rescue_teams.id.
SELECT ST_AsMVT(t, %(name)s, 4096, 'geom', 'fid') AS mvt
FROM (
    SELECT r.id AS fid, r.id, r.code, r.name, r.team_type, r.members,
           array_to_string(r.capabilities, ',') AS capabilities,
           CASE WHEN EXISTS (SELECT 1 FROM work_order_teams b WHERE b.team_id = r.id AND b.released_at IS NULL)
                THEN 'deployed' ELSE r.status END AS status,
           ST_AsMVTGeom(ST_Transform(r.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom
    FROM rescue_teams r
    WHERE r.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
) t
