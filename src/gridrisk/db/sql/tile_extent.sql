-- The lon/lat extent of one tile collection's features, for TileJSON `bounds`. Only the branch
-- named by %(table)s runs (the others stop at a one-time filter).
SELECT ST_XMin(e) AS west, ST_YMin(e) AS south, ST_XMax(e) AS east, ST_YMax(e) AS north
FROM (
    SELECT ST_Extent(geom) AS e FROM (
        SELECT geom FROM cells WHERE %(table)s::text = 'cells' AND layer = %(layer)s::text
        UNION ALL SELECT geom FROM risk_sources WHERE %(table)s::text = 'risk_sources'
        UNION ALL SELECT geom FROM shelters WHERE %(table)s::text = 'shelters'
        UNION ALL SELECT geom FROM hazard_points WHERE %(table)s::text = 'hazard_points'
    ) g
) x
