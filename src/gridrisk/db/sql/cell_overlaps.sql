-- The cells of every other layer that one cell overlaps, largest share first.
SELECT o.other_layer AS layer, o.other_code AS code, c.name,
       round(o.area_m2::numeric, 1)::float8 AS area_m2,
       round(o.share::numeric, 6)::float8 AS share,
       round(o.other_share::numeric, 6)::float8 AS other_share
FROM cell_overlaps o
JOIN cells c ON c.layer = o.other_layer AND c.code = o.other_code
WHERE o.layer = %(layer)s AND o.code = %(code)s
ORDER BY o.other_layer, o.share DESC, o.other_code
