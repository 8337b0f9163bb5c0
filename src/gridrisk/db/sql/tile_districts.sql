-- One MVT tile of the admin layer: district outlines simplified to half a pixel first (they carry
-- thousands of vertices each), then clipped and quantised. Feature id = cells.id.
SELECT ST_AsMVT(t, %(name)s, 4096, 'geom', 'fid') AS mvt
FROM (
    SELECT c.id AS fid, c.code, c.name,
           ST_AsMVTGeom(ST_Simplify(ST_Transform(c.geom, 3857), %(tolerance)s, true),
                        ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom
    FROM cells c
    WHERE c.layer = %(layer)s
      AND c.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
) t
