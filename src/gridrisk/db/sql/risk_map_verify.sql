-- Differences between the maintained map and a from-scratch recomputation (none when healthy):
-- (1) cell assignments of risk sources and hazard points, (2) each cell's counts and colours.
WITH fresh AS (
    SELECT item_id AS source_id, cell_id FROM fresh_item_cells('risk_sources', NULL)
),
fresh_hazards AS (
    SELECT item_id AS hazard_id, cell_id FROM fresh_item_cells('hazard_points', NULL)
),
assign_diff AS (
    (SELECT 'missing assignment' AS problem, source_id, cell_id FROM fresh
     EXCEPT SELECT 'missing assignment', source_id, cell_id FROM source_cells)
    UNION ALL
    (SELECT 'stale assignment', source_id, cell_id FROM source_cells
     EXCEPT SELECT 'stale assignment', source_id, cell_id FROM fresh)
    UNION ALL
    (SELECT 'missing hazard assignment', hazard_id, cell_id FROM fresh_hazards
     EXCEPT SELECT 'missing hazard assignment', hazard_id, cell_id FROM hazard_cells)
    UNION ALL
    (SELECT 'stale hazard assignment', hazard_id, cell_id FROM hazard_cells
     EXCEPT SELECT 'stale hazard assignment', hazard_id, cell_id FROM fresh_hazards)
),
counts AS (
    SELECT f.cell_id,
           count(*) FILTER (WHERE s.level = 'red') AS r, count(*) FILTER (WHERE s.level = 'orange') AS o,
           count(*) FILTER (WHERE s.level = 'yellow') AS y, count(*) FILTER (WHERE s.level = 'blue') AS b
    FROM fresh f JOIN risk_sources s ON s.id = f.source_id AND s.status = 'active'
    GROUP BY f.cell_id
),
expected AS (
    SELECT cr.cell_id, coalesce(k.r, 0) AS r, coalesce(k.o, 0) AS o, coalesce(k.y, 0) AS y, coalesce(k.b, 0) AS b
    FROM cell_risk cr LEFT JOIN counts k ON k.cell_id = cr.cell_id
),
extra_items AS (
    -- Items other than risk sources (hazard points) count as the view says.
    SELECT i.cell_id,
           count(*) FILTER (WHERE i.level = 'red') AS r, count(*) FILTER (WHERE i.level = 'orange') AS o,
           count(*) FILTER (WHERE i.level = 'yellow') AS y, count(*) FILTER (WHERE i.level = 'blue') AS b
    FROM cell_risk_items i WHERE i.kind <> 'risk_source' GROUP BY i.cell_id
),
want AS (
    SELECT e.cell_id, e.r + coalesce(x.r, 0) AS r, e.o + coalesce(x.o, 0) AS o,
           e.y + coalesce(x.y, 0) AS y, e.b + coalesce(x.b, 0) AS b
    FROM expected e LEFT JOIN extra_items x ON x.cell_id = e.cell_id
),
colour_diff AS (
    SELECT 'wrong colour' AS problem, NULL::bigint AS source_id, cr.cell_id
    FROM cell_risk cr JOIN want w ON w.cell_id = cr.cell_id
    WHERE (cr.n_red, cr.n_orange, cr.n_yellow, cr.n_blue) IS DISTINCT FROM (w.r, w.o, w.y, w.b)
       OR cr.computed_colour IS DISTINCT FROM
          CASE WHEN w.r > 0 THEN 'red' WHEN w.o > 0 THEN 'orange' WHEN w.y > 0 THEN 'yellow' ELSE 'blue' END
       OR cr.colour IS DISTINCT FROM coalesce(cr.pinned_colour, cr.computed_colour)
)
SELECT d.problem, d.source_id, c.layer, c.code
FROM (SELECT * FROM assign_diff UNION ALL SELECT * FROM colour_diff) d
JOIN cells c ON c.id = d.cell_id
ORDER BY d.problem, c.layer, c.code
LIMIT 1000
