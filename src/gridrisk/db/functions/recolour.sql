-- The four-colour map: what counts toward a cell's colour, every cell's row in cell_risk, and how
-- its counts are kept. A cell's colour is the highest level among the items in it that count
-- (active risk sources, hazard points not yet remediated or closed), blue when there are none; a
-- pinned colour shows instead of the computed one, which is still kept beside it. A write changes
-- the counts by the difference it makes (cell_assignment.sql), never by recounting a cell: a
-- district holds thousands of items, and every writer in it would queue behind the recount. All of
-- it runs in the writing transaction, so a colour is current the moment the write commits.

-- What counts toward a cell's colour: one row per item and cell it lies in, at the level it counts
-- with there (the links carry it: map_level, cell_assignment.sql).
CREATE OR REPLACE VIEW cell_risk_items AS
SELECT cell_id, level, 'risk_source'::text AS kind, source_id AS item_id
FROM source_cells WHERE level IS NOT NULL
UNION ALL
SELECT cell_id, level, 'hazard_point'::text AS kind, hazard_id AS item_id
FROM hazard_cells WHERE level IS NOT NULL;

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

-- Set the given cells' counts (P_RELATIVE: add them instead), their computed colour and score with
-- them, and record every colour change: the colour history, and a cell_colour event per changed
-- colour (outbox_events.sql); returns how many colours changed. Unchanged cells are not written.
-- Concurrency: the cell rows are locked first, in id order, so writers never deadlock on them,
-- and for as long as the rest of the writing transaction lasts, which is why a write's cell update
-- comes last in it. A VOLATILE function takes a fresh snapshot per statement, so the update that
-- follows reads every count committed before the lock was granted: no difference is ever lost.
CREATE OR REPLACE FUNCTION cell_counts_apply(p_cells bigint[], p_red int[], p_orange int[], p_yellow int[],
                                             p_blue int[], p_relative boolean) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    payloads jsonb[];
BEGIN
    IF p_cells IS NULL OR cardinality(p_cells) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM cell_risk WHERE cell_id = ANY(p_cells) ORDER BY cell_id FOR UPDATE;
    WITH given AS (
        SELECT * FROM unnest(p_cells, p_red, p_orange, p_yellow, p_blue) AS g(cell_id, r, o, y, b)
    ),
    counts AS (
        SELECT cr.cell_id, cr.colour AS old_colour,
               CASE WHEN p_relative THEN cr.n_red + g.r ELSE g.r END AS r,
               CASE WHEN p_relative THEN cr.n_orange + g.o ELSE g.o END AS o,
               CASE WHEN p_relative THEN cr.n_yellow + g.y ELSE g.y END AS y,
               CASE WHEN p_relative THEN cr.n_blue + g.b ELSE g.b END AS b
        FROM cell_risk cr JOIN given g USING (cell_id)
    ),
    calc AS (
        SELECT cell_id, old_colour, r, o, y, b,
               CASE WHEN r > 0 THEN 'red' WHEN o > 0 THEN 'orange' WHEN y > 0 THEN 'yellow' ELSE 'blue' END
                   AS computed,
               -- A finer shade than the colour: weighted count of what lies in the cell.
               (100 * r + 30 * o + 10 * y + b)::float8 AS score
        FROM counts
    ),
    changes AS (
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
                  cr.n_red, cr.n_orange, cr.n_yellow, cr.n_blue, cr.score, calc.old_colour
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

-- Recount the given cells from scratch (a layer re-import, a full recompute): every count is set
-- from the links, whatever it was. The cells are locked before they are counted: a writer that
-- changed links but has not yet added its difference adds it after this count, on top of it; one
-- that has is waited for, and counted.
CREATE OR REPLACE FUNCTION risk_recolour(p_cells bigint[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    c record;
BEGIN
    IF p_cells IS NULL OR cardinality(p_cells) = 0 THEN
        RETURN 0;
    END IF;
    PERFORM 1 FROM cell_risk WHERE cell_id = ANY(p_cells) ORDER BY cell_id FOR UPDATE;
    -- The items are limited to the cells twice, in the join and on their own: only the second
    -- reaches into both halves of the view and their cell indexes.
    SELECT array_agg(cr.cell_id ORDER BY cr.cell_id) AS cells,
           array_agg(coalesce(k.r, 0) ORDER BY cr.cell_id) AS r, array_agg(coalesce(k.o, 0) ORDER BY cr.cell_id) AS o,
           array_agg(coalesce(k.y, 0) ORDER BY cr.cell_id) AS y, array_agg(coalesce(k.b, 0) ORDER BY cr.cell_id) AS b
    INTO c
    FROM cell_risk cr
    LEFT JOIN (
        SELECT i.cell_id,
               count(*) FILTER (WHERE i.level = 'red')::int AS r, count(*) FILTER (WHERE i.level = 'orange')::int AS o,
               count(*) FILTER (WHERE i.level = 'yellow')::int AS y, count(*) FILTER (WHERE i.level = 'blue')::int AS b
        FROM cell_risk_items i WHERE i.cell_id = ANY(p_cells) GROUP BY i.cell_id
    ) k USING (cell_id)
    WHERE cr.cell_id = ANY(p_cells);
    RETURN cell_counts_apply(c.cells, c.r, c.o, c.y, c.b, false);
END $$;
