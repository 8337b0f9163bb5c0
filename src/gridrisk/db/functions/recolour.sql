-- The four-colour map: what counts toward a cell's colour, every cell's row in cell_risk, and the
-- recolouring every write that moves or re-levels an item ends with. A cell's colour is the
-- highest level among the items in it that count (active risk sources, hazard points not yet
-- remediated or closed), blue when there are none; a pinned colour shows instead of the computed
-- one, which is still kept beside it. All of it runs in the writing transaction, so a colour is
-- current the moment the write commits, whatever wrote it.

-- What counts toward a cell's colour: one row per item and cell it lies in (cell_assignment.sql).
CREATE OR REPLACE VIEW cell_risk_items AS
SELECT sc.cell_id, rs.level, 'risk_source'::text AS kind, rs.id AS item_id
FROM source_cells sc
JOIN risk_sources rs ON rs.id = sc.source_id
WHERE rs.status = 'active'
UNION ALL
SELECT hc.cell_id, hp.level, 'hazard_point'::text AS kind, hp.id AS item_id
FROM hazard_cells hc
JOIN hazard_points hp ON hp.id = hc.hazard_id
WHERE hp.status NOT IN ('remediated', 'closed');

-- Every new cell, whatever wrote it, gets its row in the map (blue until something lies in it).
CREATE OR REPLACE FUNCTION cells_init_risk() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO cell_risk (cell_id, layer, code)
    SELECT n.id, n.layer, n.code FROM new_cells n
    ON CONFLICT (cell_id) DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER cells_init_risk AFTER INSERT ON cells
REFERENCING NEW TABLE AS new_cells FOR EACH STATEMENT EXECUTE FUNCTION cells_init_risk();

-- Recompute the colour of the given cells from what lies in them, and record every change: the
-- colour history, and a cell_colour event per changed colour (outbox_events.sql); returns how many
-- colours changed.
-- Concurrency: the cell rows are locked first (in id order, so writers never deadlock on
-- them); a VOLATILE function takes a fresh snapshot per statement, so the recount that follows
-- sees every transaction that held these cells before us. No update is ever lost.
-- The items are limited to the cells twice, in the join and on their own: only the second reaches
-- into both halves of the view and their cell indexes; with the join alone the planner hashes
-- every item in the city, and a one-row write recounted the whole map (100-200 ms with the demo city).
CREATE OR REPLACE FUNCTION risk_recolour(p_cells bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    payloads jsonb[];
BEGIN
    IF p_cells IS NULL OR cardinality(p_cells) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM cell_risk WHERE cell_id = ANY(p_cells) ORDER BY cell_id FOR UPDATE;
    WITH agg AS (
        SELECT cr.cell_id,
               count(i.item_id) FILTER (WHERE i.level = 'red')::int AS r,
               count(i.item_id) FILTER (WHERE i.level = 'orange')::int AS o,
               count(i.item_id) FILTER (WHERE i.level = 'yellow')::int AS y,
               count(i.item_id) FILTER (WHERE i.level = 'blue')::int AS b
        FROM cell_risk cr
        LEFT JOIN cell_risk_items i ON i.cell_id = cr.cell_id AND i.cell_id = ANY(p_cells)
        WHERE cr.cell_id = ANY(p_cells)
        GROUP BY cr.cell_id
    ),
    calc AS (
        SELECT cell_id, r, o, y, b,
               CASE WHEN r > 0 THEN 'red' WHEN o > 0 THEN 'orange' WHEN y > 0 THEN 'yellow' ELSE 'blue' END
                   AS computed,
               -- A finer shade than the colour: weighted count of what lies in the cell.
               (100 * r + 30 * o + 10 * y + b)::float8 AS score
        FROM agg
    ),
    before AS (
        SELECT cell_id, colour FROM cell_risk WHERE cell_id = ANY(p_cells)
    ),
    upd AS (
        UPDATE cell_risk cr
        SET n_red = calc.r, n_orange = calc.o, n_yellow = calc.y, n_blue = calc.b,
            computed_colour = calc.computed,
            colour = coalesce(cr.pinned_colour, calc.computed),
            score = calc.score,
            changed_at = CASE WHEN coalesce(cr.pinned_colour, calc.computed) <> cr.colour
                              THEN clock_timestamp() ELSE cr.changed_at END
        FROM calc
        WHERE cr.cell_id = calc.cell_id
          AND (cr.n_red, cr.n_orange, cr.n_yellow, cr.n_blue, cr.computed_colour)
              IS DISTINCT FROM (calc.r, calc.o, calc.y, calc.b, calc.computed)
        RETURNING cr.cell_id, cr.layer, cr.code, cr.colour, cr.computed_colour,
                  cr.n_red, cr.n_orange, cr.n_yellow, cr.n_blue, cr.score
    ),
    changes AS (
        SELECT u.*, b.colour AS old_colour FROM upd u JOIN before b USING (cell_id)
    ),
    hist AS (
        INSERT INTO cell_colour_history (cell_id, at, old, new, computed, counts)
        SELECT cell_id, clock_timestamp(), old_colour, colour, computed_colour,
               jsonb_build_object('red', n_red, 'orange', n_orange, 'yellow', n_yellow, 'blue', n_blue,
                                  'score', score)
        FROM changes
    )
    SELECT array_agg(jsonb_build_object('layer', layer, 'code', code, 'old', old_colour, 'new', colour,
                                        'at', clock_timestamp()) ORDER BY layer, code)
    INTO payloads
    FROM changes WHERE colour <> old_colour;
    RETURN outbox_write('cell_colour', payloads);
END $$;
