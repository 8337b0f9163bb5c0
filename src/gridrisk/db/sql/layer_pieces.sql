-- Re-cut the layer's cells into small pieces for fast point lookups.
WITH gone AS (DELETE FROM cell_pieces WHERE layer = %(layer)s)
INSERT INTO cell_pieces (cell_id, layer, geom)
SELECT c.id, c.layer, ST_Subdivide(c.geom, 64)
FROM cells c
WHERE c.layer = %(layer)s
