-- One MVT tile of vulnerable sites. Feature id = vulnerable_sites.id.
SELECT ST_AsMVT(t, %(name)s, 4096, 'geom', 'fid') AS mvt
FROM (
    SELECT v.id AS fid, v.id, v.code, v.name, v.kind, v.persons, v.status,
           ST_AsMVTGeom(ST_Transform(v.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom
    FROM vulnerable_sites v
    WHERE v.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
) t
