-- Which cells each map item lies in, and the level it counts with there. Every registry table whose
-- items colour the map is named once, in map_item_tables(), with the table that links its items to
-- cells, and says in map_level() when and how its items count; one set of functions and one pair of
-- statement triggers then serve them all: a write reassigns the rows it touched and adds the
-- difference it made to the counts of the cells they left, entered or re-levelled (recolour.sql);
-- a re-imported layer, or a full recompute, reassigns and recounts everything. The rules (the same
-- as /cells/at answers): a point belongs to one cell per layer, the one with the smallest code when
-- it lies on a shared edge; a polygon belongs to every cell whose interior it shares (touching a
-- cell's edge is not enough).

-- The tables whose items colour the map: (items, the table linking them to cells, its item column).
CREATE OR REPLACE FUNCTION map_item_tables() RETURNS TABLE (items text, links text, item_column text)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('risk_sources', 'source_cells', 'source_id'), ('hazard_points', 'hazard_cells', 'hazard_id')
$$;

-- The level an item of P_ITEMS with this status and level counts with on the map, NULL while it
-- does not count: a risk source while active, a hazard point until remediated or closed
-- (vocabulary.HAZARD_ON_MAP).
CREATE OR REPLACE FUNCTION map_level(p_items text, p_status text, p_level text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE p_items
        WHEN 'risk_sources' THEN CASE WHEN p_status = 'active' THEN p_level END
        WHEN 'hazard_points' THEN CASE WHEN p_status NOT IN ('remediated', 'closed') THEN p_level END
    END
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
-- with the points outside). The test is item_in_piece's, spelt so that only the items' index can
-- serve it: the box test against the piece's envelope (the same box) and the exact predicates
-- without their index support, so the planner can never turn the join round; and as a plain join,
-- not a LATERAL subquery, it may run in parallel (1.0 s instead of 2.3 s on two cores).
CREATE OR REPLACE FUNCTION fresh_item_cells(p_items text, p_layer text)
RETURNS TABLE (item_id bigint, cell_id bigint, layer text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY EXECUTE format($q$
        SELECT DISTINCT ON (s.id, c.layer, CASE WHEN GeometryType(s.geom) = 'POINT' THEN 0 ELSE c.id END)
               s.id, c.id, c.layer
        FROM cell_pieces p
        JOIN %I s ON s.geom && ST_Envelope(p.geom) AND _ST_Intersects(p.geom, s.geom)
                     AND (GeometryType(s.geom) = 'POINT' OR NOT _ST_Touches(p.geom, s.geom))
        JOIN cells c ON c.id = p.cell_id
        WHERE $1::text IS NULL OR p.layer = $1
        ORDER BY s.id, c.layer, CASE WHEN GeometryType(s.geom) = 'POINT' THEN 0 ELSE c.id END, c.code
    $q$, p_items) USING p_layer;
END $$;

-- Bring the links of the given items of P_ITEMS in line with them and add the difference to the
-- counts: P_GEOMS is each item's geometry when it was placed or moved (NULL: where it was), P_LEVELS
-- the level it now counts with (map_level). A link that went counts -1 at its old level, a new one
-- +1, a kept one whose level changed both; per cell the sum is applied once, and a move inside a
-- district leaves the district's row untouched (no lock, no write). The item rows are locked by
-- the write that called this, so no other writer changes their links meanwhile.
CREATE OR REPLACE FUNCTION risk_refresh_items(p_items text, p_ids bigint[], p_geoms geometry[], p_levels text[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    t record;
    placed record;
    d record;
BEGIN
    IF p_ids IS NULL OR cardinality(p_ids) = 0 THEN
        RETURN 0;
    END IF;
    SELECT * INTO STRICT t FROM map_item_tables() m WHERE m.items = p_items;
    SELECT array_agg(f.item_id) AS items, array_agg(f.cell_id) AS cells, array_agg(f.layer) AS layers
    INTO placed
    FROM item_cells(ARRAY(SELECT i FROM unnest(p_ids, p_geoms) u(i, g) WHERE g IS NOT NULL),
                    ARRAY(SELECT g FROM unnest(p_ids, p_geoms) u(i, g) WHERE g IS NOT NULL)) f;
    EXECUTE format('SELECT * FROM %I($1, $2, $3, $4, $5, $6)', t.links || '_diff') INTO d
    USING p_ids, p_geoms, p_levels, placed.items, placed.cells, placed.layers;
    RETURN cell_counts_apply(d.d_cells, d.d_red, d.d_orange, d.d_yellow, d.d_blue, true);
END $$;

-- <links>_diff, one per link table, made here from one statement: it writes the links of items
-- $1 (geometries $2, levels $3) placed in cells $5 (items $4, layers $6) and returns the
-- difference per cell. Only the table's name varies. A write of a few rows runs the statement as
-- static SQL, planned once per connection (planning it on every write cost 0.5 ms of 2); a large
-- one runs it dynamically, planned for its own size: a plan cached from one-row writes joins
-- thousands of rows by nested loops (see map_items_updated).
DO $do$
DECLARE
    t record;
    stmt text;
BEGIN
    FOR t IN SELECT * FROM map_item_tables() LOOP
        stmt := format($q$
    WITH req AS (
        SELECT * FROM unnest($1::bigint[], $2::geometry[], $3::text[]) AS r(id, geom, level)
    ),
    old AS (
        SELECT k.%2$I AS item_id, k.cell_id, k.layer, k.level FROM %1$I k WHERE k.%2$I = ANY($1)
    ),
    want AS (
        SELECT p.item_id, p.cell_id, p.layer, r.level
        FROM unnest($4::bigint[], $5::bigint[], $6::text[]) AS p(item_id, cell_id, layer)
        JOIN req r ON r.id = p.item_id
        UNION ALL
        SELECT o.item_id, o.cell_id, o.layer, r.level FROM old o JOIN req r ON r.id = o.item_id
        WHERE r.geom IS NULL
    ),
    gone AS (
        DELETE FROM %1$I k USING old o
        WHERE k.%2$I = o.item_id AND k.cell_id = o.cell_id
          AND NOT EXISTS (SELECT 1 FROM want w WHERE w.item_id = o.item_id AND w.cell_id = o.cell_id)
        RETURNING k.cell_id, k.level
    ),
    added AS (
        INSERT INTO %1$I (%2$I, cell_id, layer, level)
        SELECT w.item_id, w.cell_id, w.layer, w.level FROM want w
        WHERE NOT EXISTS (SELECT 1 FROM old o WHERE o.item_id = w.item_id AND o.cell_id = w.cell_id)
        RETURNING cell_id, level
    ),
    relevelled AS (
        UPDATE %1$I k SET level = w.level
        FROM want w JOIN old o ON o.item_id = w.item_id AND o.cell_id = w.cell_id
        WHERE k.%2$I = w.item_id AND k.cell_id = w.cell_id AND w.level IS DISTINCT FROM o.level
        RETURNING k.cell_id, o.level AS old_level, w.level AS new_level
    ),
    deltas AS (
        SELECT cell_id, level, -1 AS d FROM gone
        UNION ALL SELECT cell_id, level, 1 FROM added
        UNION ALL SELECT cell_id, old_level, -1 FROM relevelled
        UNION ALL SELECT cell_id, new_level, 1 FROM relevelled
    ),
    per_cell AS (
        SELECT cell_id, sum(d) FILTER (WHERE level = 'red')::int AS r,
               sum(d) FILTER (WHERE level = 'orange')::int AS o,
               sum(d) FILTER (WHERE level = 'yellow')::int AS y,
               sum(d) FILTER (WHERE level = 'blue')::int AS b
        FROM deltas WHERE level IS NOT NULL GROUP BY cell_id
    )
    SELECT array_agg(cell_id ORDER BY cell_id),
           array_agg(coalesce(r, 0) ORDER BY cell_id), array_agg(coalesce(o, 0) ORDER BY cell_id),
           array_agg(coalesce(y, 0) ORDER BY cell_id), array_agg(coalesce(b, 0) ORDER BY cell_id)
    FROM per_cell
    WHERE (coalesce(r, 0), coalesce(o, 0), coalesce(y, 0), coalesce(b, 0)) <> (0, 0, 0, 0)
        $q$, t.links, t.item_column);
        EXECUTE format($fn$
CREATE OR REPLACE FUNCTION %1$s_diff(bigint[], geometry[], text[], bigint[], bigint[], text[],
    OUT d_cells bigint[], OUT d_red int[], OUT d_orange int[], OUT d_yellow int[], OUT d_blue int[])
LANGUAGE plpgsql AS $body$
BEGIN
    IF cardinality($1) <= 32 THEN
        %2$s
        INTO d_cells, d_red, d_orange, d_yellow, d_blue;
    ELSE
        EXECUTE %3$L INTO d_cells, d_red, d_orange, d_yellow, d_blue USING $1, $2, $3, $4, $5, $6;
    END IF;
END $body$;
        $fn$, t.links, stmt, stmt);
    END LOOP;
END $do$;

-- A link deleted by anything but risk_refresh_items, whose differences are its own: the cascade of
-- a hard DELETE of the item. Its count goes with it; links of items that still exist (a reassignment,
-- a deleted cell whose row in cell_risk goes too) are someone else's to count.
CREATE OR REPLACE FUNCTION map_links_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    t record;
    d record;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM gone_links) THEN
        RETURN NULL;  -- a reassignment's DELETE that removed nothing still fires this
    END IF;
    SELECT * INTO STRICT t FROM map_item_tables() m WHERE m.links = TG_TABLE_NAME;
    EXECUTE format($q$
        WITH per_cell AS (
            SELECT g.cell_id, -count(*) FILTER (WHERE g.level = 'red')::int AS r,
                   -count(*) FILTER (WHERE g.level = 'orange')::int AS o,
                   -count(*) FILTER (WHERE g.level = 'yellow')::int AS y,
                   -count(*) FILTER (WHERE g.level = 'blue')::int AS b
            FROM gone_links g
            WHERE g.level IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %1$I s WHERE s.id = g.%2$I)
            GROUP BY g.cell_id
        )
        SELECT array_agg(cell_id ORDER BY cell_id) AS cells, array_agg(r ORDER BY cell_id) AS r,
               array_agg(o ORDER BY cell_id) AS o, array_agg(y ORDER BY cell_id) AS y,
               array_agg(b ORDER BY cell_id) AS b
        FROM per_cell
    $q$, t.items, t.item_column) INTO d;
    PERFORM cell_counts_apply(d.cells, d.r, d.o, d.y, d.b, true);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER source_cells_deleted AFTER DELETE ON source_cells
REFERENCING OLD TABLE AS gone_links FOR EACH STATEMENT EXECUTE FUNCTION map_links_deleted();
CREATE OR REPLACE TRIGGER hazard_cells_deleted AFTER DELETE ON hazard_cells
REFERENCING OLD TABLE AS gone_links FOR EACH STATEMENT EXECUTE FUNCTION map_links_deleted();

-- Bring the links of every map item table in line with a fresh assignment to layer P_LAYER (NULL:
-- every layer), each at its item's map level, touching only rows that differ: rewriting 400,000
-- unchanged rows would cost seconds of foreign-key checks. The item tables are locked against
-- writes first (reads go on): a write that moved an item meanwhile would leave a link behind.
CREATE OR REPLACE FUNCTION assign_items_to_cells(p_layer text) RETURNS void
-- No JIT: compiling these geometry-bound statements cost 0.3–0.6 s of a 5 s recompute, for nothing.
LANGUAGE plpgsql SET work_mem = '256MB' SET jit = off AS $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM map_item_tables() ORDER BY items LOOP
        EXECUTE format('LOCK TABLE %I IN SHARE MODE', t.items);
    END LOOP;
    FOR t IN SELECT * FROM map_item_tables() LOOP
        EXECUTE format($q$
            WITH fresh AS MATERIALIZED (
                SELECT f.*, map_level(%3$L, s.status, s.level) AS level
                FROM fresh_item_cells(%3$L, $1) f JOIN %3$I s ON s.id = f.item_id
            ),
            gone AS (
                DELETE FROM %1$I k
                WHERE ($1::text IS NULL OR k.layer = $1)
                  AND NOT EXISTS (SELECT 1 FROM fresh f WHERE f.item_id = k.%2$I AND f.cell_id = k.cell_id)
            ),
            relevelled AS (
                UPDATE %1$I k SET level = f.level FROM fresh f
                WHERE f.item_id = k.%2$I AND f.cell_id = k.cell_id AND k.level IS DISTINCT FROM f.level
            )
            INSERT INTO %1$I (%2$I, cell_id, layer, level)
            SELECT f.item_id, f.cell_id, f.layer, f.level FROM fresh f
            WHERE NOT EXISTS (SELECT 1 FROM %1$I k WHERE k.%2$I = f.item_id AND k.cell_id = f.cell_id)
        $q$, t.links, t.item_column, t.items) USING p_layer;
    END LOOP;
END $$;

-- After a layer's geometry changed (import): reassign every item to it and recolour it.
CREATE OR REPLACE FUNCTION risk_refresh_layer(p_layer text) RETURNS integer LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM assign_items_to_cells(p_layer);
    RETURN risk_recolour(ARRAY(SELECT cell_id FROM cell_risk WHERE layer = p_layer));
END $$;

-- The whole map from scratch: every item to every layer's cells, every cell recoloured.
CREATE OR REPLACE FUNCTION risk_refresh_all() RETURNS integer LANGUAGE plpgsql SET jit = off AS $$
BEGIN
    PERFORM assign_items_to_cells(NULL);
    RETURN risk_recolour(ARRAY(SELECT cell_id FROM cell_risk));
END $$;

-- Every write of a map item, whatever its path (API, bulk import, SQL), keeps the map current
-- inside the same statement: set-based, so a 100,000-row import recolours each cell once.
CREATE OR REPLACE FUNCTION map_items_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM risk_refresh_items(TG_TABLE_NAME, ids, geoms, levels)
    FROM (SELECT array_agg(id) AS ids, array_agg(geom) AS geoms,
                 array_agg(map_level(TG_TABLE_NAME, n.status, n.level)) AS levels
          FROM new_rows n) n;
    RETURN NULL;
END $$;

-- Only rows whose place or map level changed move or recolour anything; a row that kept its place
-- passes no geometry, so its links are re-levelled where they are.
-- The old and new rows meet in a FULL JOIN on purpose, here and in every statement trigger that
-- joins them: PL/pgSQL caches a statement's plan from its first call, often a one-row API write,
-- and transition tables carry no statistics; a nested loop planned for one row and reused for a
-- 100,000-row import compares every row with every other (6,000 rows took 14 s). A full join is
-- always hashed or merged. The tests use IS DISTINCT FROM, not strict operators, so PostgreSQL
-- cannot reduce it to an inner join; in an UPDATE every id is on both sides, so nothing else changes.
CREATE OR REPLACE FUNCTION map_items_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM risk_refresh_items(TG_TABLE_NAME, ids, geoms, levels)
    FROM (SELECT array_agg(n.id) AS ids,
                 array_agg(CASE WHEN ST_AsEWKB(n.geom) IS DISTINCT FROM ST_AsEWKB(o.geom) THEN n.geom END) AS geoms,
                 array_agg(map_level(TG_TABLE_NAME, n.status, n.level)) AS levels
          FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
          WHERE ST_AsEWKB(n.geom) IS DISTINCT FROM ST_AsEWKB(o.geom)
             OR map_level(TG_TABLE_NAME, n.status, n.level)
                IS DISTINCT FROM map_level(TG_TABLE_NAME, o.status, o.level)) n;
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
