-- The pieces of one layer's cells that cells_at.sql tests points against, as WKB.
SELECT p.cell_id, ST_AsBinary(p.geom) AS wkb
FROM cell_pieces p
JOIN cells c ON c.id = p.cell_id
WHERE c.layer = %(layer)s
