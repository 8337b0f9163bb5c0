-- One MVT tile of risk sources (points and polygons, every status). Feature id = risk_sources.id.
SELECT ST_AsMVT(t, %(name)s, 4096, 'geom', 'fid') AS mvt
FROM (
    SELECT s.id AS fid, s.id, s.code, s.name, s.category, s.level, s.status,
           ST_AsMVTGeom(ST_Transform(s.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom
    FROM risk_sources s
    WHERE s.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
) t
