-- Cells of the layer that the new file no longer has.
DELETE FROM cells c
WHERE c.layer = %(layer)s
  AND NOT EXISTS (SELECT 1 FROM layer_stage s WHERE s.code = c.code)
