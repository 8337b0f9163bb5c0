-- Differences between the maintained map and a from-scratch recomputation (none when healthy):
-- (1) cell assignments of risk sources and hazard points, and the level each link counts with;
-- (2) each cell's counts and colours, counted from the items themselves, not from the links.
WITH fresh AS (
    SELECT f.item_id AS source_id, f.cell_id, map_level('risk_sources', s.status, s.level) AS level
    FROM fresh_item_cells('risk_sources', NULL) f JOIN risk_sources s ON s.id = f.item_id
),
fresh_hazards AS (
    SELECT f.item_id AS hazard_id, f.cell_id, map_level('hazard_points', h.status, h.level) AS level
    FROM fresh_item_cells('hazard_points', NULL) f JOIN hazard_points h ON h.id = f.item_id
),
assign_diff AS (
    (SELECT 'missing assignment' AS problem, source_id, cell_id FROM fresh
     EXCEPT SELECT 'missing assignment', source_id, cell_id FROM source_cells)
    UNION ALL
    (SELECT 'stale assignment', source_id, cell_id FROM source_cells
     EXCEPT SELECT 'stale assignment', source_id, cell_id FROM fresh)
    UNION ALL
    (SELECT 'wrong level', k.source_id, k.cell_id FROM source_cells k JOIN fresh f USING (source_id, cell_id)
     WHERE k.level IS DISTINCT FROM f.level)
    UNION ALL
    (SELECT 'missing hazard assignment', hazard_id, cell_id FROM fresh_hazards
     EXCEPT SELECT 'missing hazard assignment', hazard_id, cell_id FROM hazard_cells)
    UNION ALL
    (SELECT 'stale hazard assignment', hazard_id, cell_id FROM hazard_cells
     EXCEPT SELECT 'stale hazard assignment', hazard_id, cell_id FROM fresh_hazards)
    UNION ALL
    (SELECT 'wrong hazard level', k.hazard_id, k.cell_id FROM hazard_cells k JOIN fresh_hazards f USING (hazard_id, cell_id)
     WHERE k.level IS DISTINCT FROM f.level)
),
counts AS (
    SELECT i.cell_id,
           count(*) FILTER (WHERE i.level = 'red') AS r, count(*) FILTER (WHERE i.level = 'orange') AS o,
           count(*) FILTER (WHERE i.level = 'yellow') AS y, count(*) FILTER (WHERE i.level = 'blue') AS b
    FROM (SELECT cell_id, level FROM fresh UNION ALL SELECT cell_id, level FROM fresh_hazards) i
    WHERE i.level IS NOT NULL
    GROUP BY i.cell_id
),
want AS (
    SELECT cr.cell_id, coalesce(k.r, 0) AS r, coalesce(k.o, 0) AS o, coalesce(k.y, 0) AS y, coalesce(k.b, 0) AS b
    FROM cell_risk cr LEFT JOIN counts k ON k.cell_id = cr.cell_id
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
