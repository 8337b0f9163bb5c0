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

-- Does an item's geometry lie in a piece of a cell, by the rules above? (A point on a shared edge
-- lies in both cells here; the smallest code is chosen where the pairs are picked.) Inlined by the
-- planner, so its && finds pieces or items through their GiST indexes.
CREATE OR REPLACE FUNCTION item_in_piece(p_piece geometry, p_item geometry) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT p_piece && p_item AND ST_Intersects(p_piece, p_item)
           AND (GeometryType(p_item) = 'POINT' OR NOT ST_Touches(p_piece, p_item))
$$;

-- The cells of the given items (ids with their geometries: a write's rows). Each item finds its
-- pieces through their GiST index. Static SQL, so a connection plans it once: a one-row write
-- must not pay PostGIS's join estimates (several ms) on every call. Pairs are picked as the rules
-- say: for a point, the cell with the smallest code per layer; for a polygon, every cell.
CREATE OR REPLACE FUNCTION item_cells(p_ids bigint[], p_geoms geometry[])
RETURNS TABLE (item_id bigint, cell_id bigint, layer text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    SELECT DISTINCT ON (s.id, c.layer, CASE WHEN GeometryType(s.geom) = 'POINT' THEN 0 ELSE c.id END)
           s.id, c.id, c.layer
    FROM unnest(p_ids, p_geoms) AS s(id, geom)
    JOIN cell_pieces p ON item_in_piece(p.geom, s.geom)
    JOIN cells c ON c.id = p.cell_id
    ORDER BY s.id, c.layer, CASE WHEN GeometryType(s.geom) = 'POINT' THEN 0 ELSE c.id END, c.code;
END $$;

-- The cells of every item of P_ITEMS in layer P_LAYER (NULL: every layer), picked as item_cells
-- picks them. Here the pieces drive the join: consecutive point tests hit the same piece, so
-- PostGIS reuses its prepared geometry (100,000 points over 37,000 pieces: 3.0 s, against 7.3 s
-- with the points outside); OFFSET 0 keeps the planner from flattening the LATERAL.
CREATE OR REPLACE FUNCTION fresh_item_cells(p_items text, p_layer text)
RETURNS TABLE (item_id bigint, cell_id bigint, layer text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT DISTINCT ON (s.id, c.layer, CASE WHEN GeometryType(s.geom) = 'POINT' THEN 0 ELSE c.id END)
               s.id, c.id, c.layer
        FROM cell_pieces p
        CROSS JOIN LATERAL (SELECT s.id, s.geom FROM %I s WHERE item_in_piece(p.geom, s.geom) OFFSET 0) s
        JOIN cells c ON c.id = p.cell_id
        WHERE $1::text IS NULL OR p.layer = $1
        ORDER BY s.id, c.layer, CASE WHEN GeometryType(s.geom) = 'POINT' THEN 0 ELSE c.id END, c.code
    $q$, p_items) USING p_layer;
END $$;

-- Reassign the given items of P_ITEMS (ids with their geometries) and recolour the cells they left
-- and entered. Only the link table's name varies, so only the plain writes to it are dynamic.
CREATE OR REPLACE FUNCTION risk_refresh_items(p_items text, p_ids bigint[], p_geoms geometry[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    t record;
    fresh record;
    touched bigint[];
BEGIN
    IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN 0;
    END IF;
    SELECT * INTO STRICT t FROM map_item_tables() m WHERE m.items = p_items;
    SELECT array_agg(f.item_id) AS items, array_agg(f.cell_id) AS cells, array_agg(f.layer) AS layers
    INTO fresh FROM item_cells(p_ids, p_geoms) f;
    EXECUTE format($q$
        WITH gone AS (
            DELETE FROM %1$I WHERE %2$I = ANY($1) RETURNING cell_id
        ),
        added AS (
            INSERT INTO %1$I (%2$I, cell_id, layer) SELECT * FROM unnest($2, $3, $4) RETURNING cell_id
        )
        SELECT array_agg(DISTINCT cell_id) FROM (SELECT cell_id FROM gone UNION ALL SELECT cell_id FROM added) c
    $q$, t.links, t.item_column) INTO touched USING p_ids, fresh.items, fresh.cells, fresh.layers;
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
    PERFORM risk_refresh_items(TG_TABLE_NAME, ids, geoms)
    FROM (SELECT array_agg(id) AS ids, array_agg(geom) AS geoms FROM new_rows) n;
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
    PERFORM risk_refresh_items(TG_TABLE_NAME, ids, geoms)
    FROM (SELECT array_agg(n.id) AS ids, array_agg(n.geom) AS geoms
          FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
          WHERE ST_AsEWKB(n.geom) IS DISTINCT FROM ST_AsEWKB(o.geom) OR n.level IS DISTINCT FROM o.level
             OR n.status IS DISTINCT FROM o.status) n;
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
