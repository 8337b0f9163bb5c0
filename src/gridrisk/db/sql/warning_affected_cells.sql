-- The cells of every layer a warning's area covers, stored as {layer: [codes]}. A cell counts when
-- more than 0.1%% of it lies in the area: shared edges are not coverage (a district's neighbours
-- touch it, and the union of cells differs from their outlines by floating-point slivers).
-- An area made of whole districts reads the layers' crosswalk (cell_overlaps), which already holds
-- every cell's share in every district; any other area is intersected with the cells' pieces,
-- pieces inside an area piece counted whole without computing an intersection.
WITH a AS MATERIALIZED (
    SELECT ST_Subdivide(area, 128) AS g FROM warnings
    WHERE id = %(warning_id)s AND %(districts)s::text[] IS NULL
),
ov AS (
    SELECT p.cell_id,
           sum(CASE WHEN ST_CoveredBy(p.geom, a.g) THEN ST_Area(p.geom)
                    ELSE ST_Area(ST_Intersection(a.g, p.geom)) END) AS overlap
    FROM a JOIN cell_pieces p ON p.geom && a.g AND ST_Intersects(a.g, p.geom)
    GROUP BY p.cell_id
),
hit AS (
    SELECT c.layer, c.code FROM ov JOIN cells c ON c.id = ov.cell_id
    WHERE ov.overlap > 1e-3 * ST_Area(c.geom)
    UNION ALL
    SELECT x.other_layer, x.other_code FROM cell_overlaps x
    WHERE %(districts)s::text[] IS NOT NULL AND x.layer = 'district' AND x.code = ANY(%(districts)s::text[])
    GROUP BY x.other_layer, x.other_code
    HAVING sum(x.other_share) > 1e-3
    UNION ALL
    SELECT 'district', d FROM unnest(%(districts)s::text[]) AS d
)
UPDATE warnings
SET affected_cells = coalesce((SELECT jsonb_object_agg(layer, codes)
                               FROM (SELECT layer, jsonb_agg(code ORDER BY code) AS codes
                                     FROM hit GROUP BY layer) per_layer), '{}'::jsonb)
WHERE id = %(warning_id)s
