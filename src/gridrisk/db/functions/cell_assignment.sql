-- Which cells each map item lies in. Every registry table whose items colour the map is named once,
-- in map_item_tables(), with the table that links its items to cells; one set of functions and one
-- pair of statement triggers then serve them all: a write reassigns the rows it touched and
-- recolours the cells they left and entered (recolour.sql); a re-imported layer, or a full
-- recompute, reassigns everything. The rules (the same as /cells/at answers): a point belongs to
-- one cell per layer, the one with the smallest code when it lies on a shared edge; a polygon
-- belongs to every cell whose interior it shares (touching a cell's edge is not enough).

-- The tables whose items colour the map: (items, the table linking them to cells, its item column).
CREATE OR REPLACE FUNCTION map_item_tables() RETURNS TABLE (items text, links text, item_column text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('risk_sources', 'source_cells', 'source_id'), ('hazard_points', 'hazard_cells', 'hazard_id')
$$;

-- The cells the items of P_ITEMS lie in, per the rules above: the items P_IDS (a write), or every
-- item for layer P_LAYER (NULL: every layer). A few items find their pieces through the pieces'
-- GiST index. For every item the pieces drive the join instead: consecutive point tests then hit
-- the same piece, so PostGIS reuses its prepared geometry (100,000 points over 37,000 pieces:
-- 3.0 s, against 7.3 s with the points outside); OFFSET 0 keeps the planner from flattening the
-- LATERAL that holds the pieces there.
CREATE OR REPLACE FUNCTION fresh_item_cells(p_items text, p_layer text, p_ids bigint[] DEFAULT NULL)
RETURNS TABLE (item_id bigint, cell_id bigint, layer text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- Item-piece pairs passing the test %2$s, for items of table %1$I.
    pairs text := CASE WHEN p_ids IS NOT NULL THEN
        $p$SELECT s.id, p.cell_id, p.layer FROM %1$I s
           JOIN cell_pieces p ON p.geom && s.geom AND %2$s
           WHERE s.id = ANY($1)$p$
    ELSE
        $p$SELECT s.id, p.cell_id, p.layer FROM cell_pieces p
           CROSS JOIN LATERAL (SELECT s.id FROM %1$I s WHERE s.geom && p.geom AND %2$s OFFSET 0) s
           WHERE $2::text IS NULL OR p.layer = $2$p$
    END;
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT DISTINCT ON (x.id, c.layer) x.id, c.id, c.layer
        FROM (%s) x JOIN cells c ON c.id = x.cell_id
        ORDER BY x.id, c.layer, c.code
    $q$, format(pairs, p_items, $t$GeometryType(s.geom) = 'POINT' AND ST_Intersects(p.geom, s.geom)$t$))
    USING p_ids, p_layer;
    RETURN QUERY EXECUTE format('SELECT DISTINCT x.id, x.cell_id, x.layer FROM (%s) x', format(pairs, p_items,
        $t$GeometryType(s.geom) <> 'POINT' AND ST_Intersects(p.geom, s.geom) AND NOT ST_Touches(p.geom, s.geom)$t$))
    USING p_ids, p_layer;
END $$;

-- Reassign the items P_IDS of P_ITEMS and recolour the cells they left and entered.
CREATE OR REPLACE FUNCTION risk_refresh_items(p_items text, p_ids bigint[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    touched bigint[];
BEGIN
    IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN 0;
    END IF;
    SELECT * INTO STRICT t FROM map_item_tables() m WHERE m.items = p_items;
    EXECUTE format($q$
        WITH gone AS (
            DELETE FROM %1$I WHERE %2$I = ANY($1) RETURNING cell_id
        ),
        added AS (
            INSERT INTO %1$I (%2$I, cell_id, layer)
            SELECT f.item_id, f.cell_id, f.layer FROM fresh_item_cells(%3$L, NULL, $1) f
            RETURNING cell_id
        )
        SELECT array_agg(DISTINCT cell_id) FROM (SELECT cell_id FROM gone UNION ALL SELECT cell_id FROM added) c
    $q$, t.links, t.item_column, t.items) INTO touched USING p_ids;
    RETURN risk_recolour(touched);
END $$;

-- Bring the links of every map item table in line with a fresh assignment to layer P_LAYER (NULL:
-- every layer), touching only rows that differ: rewriting 400,000 unchanged rows would cost
-- seconds of foreign-key checks.
CREATE OR REPLACE FUNCTION assign_items_to_cells(p_layer text) RETURNS void
LANGUAGE plpgsql SET work_mem = '256MB' AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM map_item_tables() LOOP
        EXECUTE format($q$
            WITH fresh AS MATERIALIZED (SELECT * FROM fresh_item_cells(%3$L, $1)),
            gone AS (
                DELETE FROM %1$I k
                WHERE ($1::text IS NULL OR k.layer = $1)
                  AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.item_id = k.%2$I AND f.cell_id = k.cell_id)
            )
            INSERT INTO %1$I (%2$I, cell_id, layer)
            SELECT f.item_id, f.cell_id, f.layer FROM fresh f
            WHERE NOT EXISTS (SELECT 1 FROM %1$I k WHERE k.%2$I = f.item_id AND k.cell_id = f.cell_id)
        $q$, t.links, t.item_column, t.items) USING p_layer;
    END LOOP;
END $$;

-- After a layer's geometry changed (import): reassign every item to it and recolour it.
CREATE OR REPLACE FUNCTION risk_refresh_layer(p_layer text) RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM assign_items_to_cells(p_layer);
    RETURN risk_recolour(ARRAY(SELECT cell_id FROM cell_risk WHERE layer = p_layer));
END $$;

-- The whole map from scratch: every item to every layer's cells, every cell recoloured.
CREATE OR REPLACE FUNCTION risk_refresh_all() RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    PERFORM assign_items_to_cells(NULL);
    RETURN risk_recolour(ARRAY(SELECT cell_id FROM cell_risk));
END $$;

-- Every write of a map item, whatever its path (API, bulk import, SQL), keeps the map current
-- inside the same statement: set-based, so a 100,000-row import recolours each cell once.
CREATE OR REPLACE FUNCTION map_items_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM risk_refresh_items(TG_TABLE_NAME, ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

-- Only rows whose place, level or status changed move or recolour anything.
-- The old and new rows meet in a FULL JOIN on purpose, here and in every statement trigger that
-- joins them: PL/pgSQL caches a statement's plan from its first call, often a one-row API write,
-- and transition tables carry no statistics; a nested loop planned for one row and reused for a
-- 100,000-row import compares every row with every other (6,000 rows took 14 s). A full join is
-- always hashed or merged. The tests use IS DISTINCT FROM, not strict operators, so PostgreSQL
-- cannot reduce it to an inner join; in an UPDATE every id is on both sides, so nothing else changes.
CREATE OR REPLACE FUNCTION map_items_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM risk_refresh_items(TG_TABLE_NAME, ARRAY(
        SELECT n.id FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
        WHERE ST_AsEWKB(n.geom) IS DISTINCT FROM ST_AsEWKB(o.geom) OR n.level IS DISTINCT FROM o.level
           OR n.status IS DISTINCT FROM o.status));
    RETURN NULL;
END $$;

-- Same-event triggers fire in name order: `_after_` sorts before `_changed_` and `_history_`, so a
-- write's cell_colour events precede its feature_changed event in the outbox.
CREATE OR REPLACE TRIGGER risk_sources_after_insert AFTER INSERT ON risk_sources
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION map_items_inserted();
CREATE OR REPLACE TRIGGER risk_sources_after_update AFTER UPDATE ON risk_sources
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION map_items_updated();

CREATE OR REPLACE TRIGGER hazard_points_after_insert AFTER INSERT ON hazard_points
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION map_items_inserted();
CREATE OR REPLACE TRIGGER hazard_points_after_update AFTER UPDATE ON hazard_points
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION map_items_updated();
