-- One MVT tile of a grid layer: cells whose box meets the buffered tile, with their colour.
-- The envelope is widened by the buffer in Web Mercator, then brought to 4326 for the GiST index
-- (a Mercator rectangle maps to an exact lon/lat rectangle). Feature id = cells.id.
SELECT ST_AsMVT(t, %(name)s, 4096, 'geom', 'fid') AS mvt
FROM (
    SELECT c.id AS fid, c.code, c.name, r.colour, c.district_code,
           ST_AsMVTGeom(ST_Transform(c.geom, 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom
    FROM cells c
    JOIN cell_risk r ON r.cell_id = c.id
    WHERE c.layer = %(layer)s
      AND c.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(margin)s), 4326)
) t
