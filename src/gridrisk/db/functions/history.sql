-- The version history of the registries (risk sources, shelters, hazard points, ...): a row per version
-- a write creates, saying who, when, and every changed field as [old, new]. The database writes it
-- where the change happens, so no path can forget it; one generic statement, written out per table,
-- serves every table. Only writes that bump `version` are recorded (a
-- shelter check-in changes occupancy alone; a threshold change re-levels sources without a version).

-- The fields that differ between two versions of a row's document, as {field: [old, new]}; for a
-- creation (no old version), every field it set.
CREATE OR REPLACE FUNCTION history_changes(p_old jsonb, p_new jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(jsonb_object_agg(d.k, jsonb_build_array(p_old -> d.k, d.v)), '{}'::jsonb)
    FROM jsonb_each(p_new) AS d(k, v)
    WHERE CASE WHEN p_old IS NULL THEN d.v <> 'null'::jsonb ELSE (p_old -> d.k) IS DISTINCT FROM d.v END
$$;

-- The statement that records the versions a write of P_TABLE made into P_HISTORY (its column
-- P_ID_COLUMN names the row; P_RENAMES spells some fields otherwise, {"l": "L"}), for P_OP INSERT
-- or UPDATE, reading the transition tables new_rows (and old_rows). A version's document is
-- every column but the bookkeeping ones, with the geometry as GeoJSON, as one jsonb_build_object
-- (at most 50 columns). Columns the history table shares with the registry (risk_source_history
-- keeps level, status and geom for the map as it was at a past moment) are copied from the new
-- version. Read from the catalog when the sources are applied, which every migration does.
CREATE OR REPLACE FUNCTION history_statement(p_table regclass, p_history text, p_id_column text,
                                             p_renames jsonb, p_op text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    doc text;           -- the document of the version aliased %1$s
    copied text;        -- `, col` for each shared column
    copied_new text;    -- `, n.col` for each
    op text;
    old_doc text;
    versions text;
BEGIN
    SELECT format('jsonb_build_object(%s, ''geometry'', ST_AsGeoJSON(%%1$s.geom, 7)::jsonb)',
                  string_agg(format('%L, %%1$s.%I', coalesce(p_renames ->> attname, attname), attname), ', '
                             ORDER BY attnum))
    INTO doc
    FROM pg_attribute
    WHERE attrelid = p_table AND attnum > 0 AND NOT attisdropped
      AND attname NOT IN ('geom', 'id', 'version', 'created_at', 'created_by', 'updated_at', 'updated_by');
    SELECT coalesce(string_agg(format(', %I', h.attname), '' ORDER BY h.attnum), ''),
           coalesce(string_agg(format(', n.%I', h.attname), '' ORDER BY h.attnum), '')
    INTO copied, copied_new
    FROM pg_attribute h
    JOIN pg_attribute r ON r.attrelid = p_table AND r.attname = h.attname AND NOT r.attisdropped
    WHERE h.attrelid = p_history::regclass AND h.attnum > 0 AND NOT h.attisdropped
      AND h.attname NOT IN ('id', 'version');
    IF p_op = 'INSERT' THEN
        op := quote_literal('create');
        old_doc := 'NULL';
        versions := 'new_rows n';
    ELSE
        op := $s$CASE WHEN n.status = 'closed' AND o.status <> 'closed' THEN 'close' ELSE 'update' END$s$;
        old_doc := format(doc, 'o');
        -- FULL JOIN: see map_items_updated (cell_assignment.sql).
        versions := 'new_rows n FULL JOIN old_rows o ON o.id = n.id WHERE n.version IS DISTINCT FROM o.version';
    END IF;
    RETURN format($q$
        INSERT INTO %1$I (%2$I, version, at, by, op, changes%3$s)
        SELECT n.id, n.version, n.updated_at, n.updated_by, %4$s, history_changes(%5$s, %6$s)%7$s
        FROM %8$s
    $q$, p_history, p_id_column, copied, op, old_doc, format(doc, 'n'), copied_new, versions);
END $$;

-- One trigger function per registry, <table>_history(), its two statements written out by
-- history_statement: static SQL is planned once per connection, where building and planning the
-- statement on every write cost a fifth of a one-row write's time in the database. Its triggers are
-- statement-level, since transition tables exist only for the event that has them (one trigger per
-- event); `_history_` sorts after `_after_` and `_changed_`. A registry is one row of the list.
DO $do$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('risk_sources', 'risk_source_history', 'source_id', '{"l": "L", "e": "E", "c": "C", "s": "S"}'::jsonb),
        ('shelters', 'shelter_history', 'shelter_id', '{}'::jsonb),
        ('hazard_points', 'hazard_point_history', 'hazard_id', '{}'::jsonb),
        ('vulnerable_sites', 'vulnerable_site_history', 'vulnerable_site_id', '{}'::jsonb),
        ('rescue_teams', 'rescue_team_history', 'rescue_team_id', '{}'::jsonb),
        ('supply_depots', 'supply_depot_history', 'supply_depot_id', '{}'::jsonb)
    ) AS v(items, history, id_column, renames)
    LOOP
        EXECUTE format($fn$
CREATE OR REPLACE FUNCTION %1$s_history() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    IF TG_OP = 'INSERT' THEN
        %2$s;
    ELSE
        %3$s;
    END IF;
    RETURN NULL;
END $body$;
        $fn$, r.items,
            history_statement(r.items::regclass, r.history, r.id_column, r.renames, 'INSERT'),
            history_statement(r.items::regclass, r.history, r.id_column, r.renames, 'UPDATE'));
        EXECUTE format($t$
            CREATE OR REPLACE TRIGGER %1$s_history_insert AFTER INSERT ON %1$I
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION %1$s_history();
            CREATE OR REPLACE TRIGGER %1$s_history_update AFTER UPDATE ON %1$I
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
            EXECUTE FUNCTION %1$s_history();
        $t$, r.items);
    END LOOP;
END $do$;
