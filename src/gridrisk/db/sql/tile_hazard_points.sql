-- One MVT tile of hazard points. Feature id = hazard_points.id.
SELECT ST_AsMVT(t, %(name)s, 4096, 'geom', 'fid') AS mvt
FROM (
    SELECT h.id AS fid, h.id, h.code, h.name, h.kind, h.level, h.status, h.threatened_persons,
           ST_AsMVTGeom(ST_Transform(h.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom
    FROM hazard_points h
    WHERE h.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
) t
