-- Set each cell's admin-unit code column to the unit of the admin layer holding the largest share of it.
UPDATE cells c
SET {column} = best.other_code
FROM (
    SELECT DISTINCT ON (o.layer, o.code) o.layer, o.code, o.other_code
    FROM cell_overlaps o
    WHERE o.other_layer = %(admin)s AND o.layer = ANY(%(layers)s)
    ORDER BY o.layer, o.code, o.share DESC, o.other_code
) best
WHERE c.layer = best.layer AND c.code = best.code AND c.{column} IS DISTINCT FROM best.other_code
