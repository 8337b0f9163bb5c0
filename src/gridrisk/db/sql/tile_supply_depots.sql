-- One MVT tile of supply depots. Feature id = supply_depots.id.
SELECT ST_AsMVT(t, %(name)s, 4096, 'geom', 'fid') AS mvt
FROM (
    SELECT d.id AS fid, d.id, d.code, d.name, d.level, d.status,
           ST_AsMVTGeom(ST_Transform(d.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom
    FROM supply_depots d
    WHERE d.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
) t
