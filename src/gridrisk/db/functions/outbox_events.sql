-- The outbox: rows in `events` that the event hub relays to live maps, tile caches and webhooks,
-- written by the statement that made the change (so an event exists exactly when its change
-- commits) through outbox_write. The kinds written here: feature_changed (a registry's rows moved
-- or changed), layer_changed (a grid was re-imported), cell_workers, work_order and warning;
-- cell_colour events come from cell_counts_apply (recolour.sql).

-- Append events of P_KIND with these payloads, in order, and wake the event hub (events/outbox.py
-- listens on the channel). Returns how many were written.
CREATE OR REPLACE FUNCTION outbox_write(p_kind text, p_payloads jsonb[]) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(cardinality(p_payloads), 0) = 0 THEN
        RETURN 0;
    END IF;
    -- Every enabled webhook endpoint subscribed to the kind gets a delivery of each event, in this
    -- same transaction: once the write commits, its deliveries exist (at least once, in id order).
    WITH written AS (
        INSERT INTO events (at, kind, payload)
        SELECT clock_timestamp(), p_kind, e.payload
        FROM unnest(p_payloads) WITH ORDINALITY AS e(payload, i)
        ORDER BY e.i
        RETURNING id, at, kind, payload
    )
    INSERT INTO webhook_deliveries (endpoint_id, event_id, kind, payload, event_at)
    SELECT w.id, e.id, e.kind, e.payload, e.at
    FROM written e JOIN webhook_endpoints w ON w.enabled AND e.kind = ANY(w.kinds)
    ORDER BY w.id, e.id;
    PERFORM pg_notify('gridrisk_events', '');
    RETURN cardinality(p_payloads);
END $$;

-- One feature_changed event per writing statement and table, never one per row (a 100,000-row
-- import must not flood the outbox). It names the rows and, per row, the box around the old and
-- the new geometry, since a moved feature leaves one place and arrives in another. Past 500 rows
-- the event carries one box around all of them: coarser, but it never misses a changed tile.
CREATE OR REPLACE FUNCTION feature_changed_emit(p_table text, p_op text, p_ids bigint[], p_boxes geometry[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_ids, 1), 0);
    payload jsonb;
    ext box2d;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    IF n <= 500 THEN
        SELECT jsonb_agg(jsonb_build_array(ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b)) ORDER BY i)
        INTO payload FROM unnest(p_boxes) WITH ORDINALITY AS u(b, i);
        payload := jsonb_build_object('collection', p_table, 'op', p_op, 'count', n,
                                      'ids', to_jsonb(p_ids), 'bbox', payload);
    ELSE
        SELECT ST_Extent(b) INTO ext FROM unnest(p_boxes) AS u(b);
        payload := jsonb_build_object('collection', p_table, 'op', p_op, 'count', n, 'ids', NULL,
                                      'bbox', jsonb_build_array(jsonb_build_array(
                                          ST_XMin(ext), ST_YMin(ext), ST_XMax(ext), ST_YMax(ext))));
    END IF;
    PERFORM outbox_write('feature_changed', ARRAY[payload]);
END $$;

-- An insert or a delete: the rows it wrote or removed. Its triggers name either transition table
-- changed_rows (an update has two, and its own function below).
CREATE OR REPLACE FUNCTION feature_changed_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feature_changed_emit(TG_TABLE_NAME, lower(TG_OP),
        (SELECT array_agg(id ORDER BY id) FROM changed_rows),
        (SELECT array_agg(ST_Envelope(geom) ORDER BY id) FROM changed_rows));
    RETURN NULL;
END $$;

-- Only rows whose geometry or any attribute changed; a no-op UPDATE emits nothing.
-- FULL JOIN: see map_items_updated (cell_assignment.sql).
CREATE OR REPLACE FUNCTION feature_changed_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    boxes geometry[];
BEGIN
    SELECT array_agg(n.id ORDER BY n.id),
           array_agg(ST_Envelope(ST_Collect(o.geom, n.geom)) ORDER BY n.id)
    INTO ids, boxes
    FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
    WHERE n IS DISTINCT FROM o;
    PERFORM feature_changed_emit(TG_TABLE_NAME, 'update', ids, boxes);
    RETURN NULL;
END $$;

-- The registries drawn on maps and tiles all take the same three triggers, named
-- <table>_changed_insert, <table>_changed_update and <table>_changed_delete.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['risk_sources', 'shelters', 'hazard_points', 'vulnerable_sites', 'rescue_teams',
                             'supply_depots'] LOOP
        EXECUTE format($t$
            CREATE OR REPLACE TRIGGER %1$s_changed_insert AFTER INSERT ON %1$I
            REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION feature_changed_rows();
            CREATE OR REPLACE TRIGGER %1$s_changed_update AFTER UPDATE ON %1$I
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION feature_changed_update();
            CREATE OR REPLACE TRIGGER %1$s_changed_delete AFTER DELETE ON %1$I
            REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION feature_changed_rows();
        $t$, t);
    END LOOP;
END $$;

-- A re-imported grid layer bumps its version: every tile of that layer is then out of date.
CREATE OR REPLACE FUNCTION layer_changed_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox_write('layer_changed', ARRAY(
        SELECT jsonb_build_object('layer', n.name, 'version', n.version)
        FROM new_rows n JOIN old_rows o USING (name)
        WHERE n.version <> o.version));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER layers_changed AFTER UPDATE ON layers
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION layer_changed_event();

-- Who works in a cell changed (assigned, renamed, linked to a key, removed): one event per
-- statement, naming the cells, so /cells/at answers from memory show it at once, like a colour.
CREATE OR REPLACE FUNCTION cell_workers_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    cells jsonb;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        SELECT jsonb_agg(DISTINCT jsonb_build_array(c.layer, c.cell_code))
        INTO cells FROM (SELECT layer, cell_code FROM new_rows UNION SELECT layer, cell_code FROM old_rows) c;
    ELSIF TG_OP = 'INSERT' THEN
        SELECT jsonb_agg(DISTINCT jsonb_build_array(c.layer, c.cell_code)) INTO cells FROM new_rows c;
    ELSE
        SELECT jsonb_agg(DISTINCT jsonb_build_array(c.layer, c.cell_code)) INTO cells FROM old_rows c;
    END IF;
    IF cells IS NOT NULL THEN
        PERFORM outbox_write('cell_workers', ARRAY[jsonb_build_object(
            'op', lower(TG_OP), 'count', jsonb_array_length(cells),
            'cells', CASE WHEN jsonb_array_length(cells) <= 500 THEN cells END)]);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER cell_workers_changed_insert AFTER INSERT ON cell_workers
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_workers_changed();
CREATE OR REPLACE TRIGGER cell_workers_changed_update AFTER UPDATE ON cell_workers
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_workers_changed();
CREATE OR REPLACE TRIGGER cell_workers_changed_delete AFTER DELETE ON cell_workers
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cell_workers_changed();

-- Work-order events: one per order created, and one per order whose status, action, cell or due
-- time changed, written by whatever statement changed it (targeting or a worker).
CREATE OR REPLACE FUNCTION work_order_event(n work_orders, p_op text, p_old_status text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_object('op', p_op, 'id', n.id, 'warning', n.warning_id, 'status', n.status,
                              'old_status', p_old_status, 'action', n.action, 'level', n.level, 'layer', n.layer,
                              'cell', n.cell_code, 'due_at', n.due_at, 'version', n.version)
$$;

CREATE OR REPLACE FUNCTION work_orders_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox_write('work_order', ARRAY(
        SELECT work_order_event(n, 'created', NULL) FROM new_rows n ORDER BY n.id));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER work_orders_inserted AFTER INSERT ON work_orders
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION work_orders_inserted();

-- FULL JOIN: a warning's cancellation updates thousands of orders through a plan cached from
-- one-row updates (see map_items_updated, cell_assignment.sql).
CREATE OR REPLACE FUNCTION work_orders_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox_write('work_order', ARRAY(
        SELECT work_order_event(n, 'updated', o.status)
        FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
        WHERE (n.status, n.action, n.cell_code, n.due_at)
              IS DISTINCT FROM (o.status, o.action, o.cell_code, o.due_at)
        ORDER BY n.id));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER work_orders_updated AFTER UPDATE ON work_orders
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION work_orders_updated();

-- A warning issued, changed or cancelled.
CREATE OR REPLACE FUNCTION warnings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.version <> OLD.version OR NEW.status <> OLD.status THEN
        PERFORM outbox_write('warning', ARRAY[jsonb_build_object(
            'op', CASE WHEN TG_OP = 'INSERT' THEN 'created'
                       WHEN NEW.status = 'cancelled' AND OLD.status <> 'cancelled' THEN 'cancelled'
                       ELSE 'updated' END,
            'id', NEW.id, 'identifier', NEW.identifier, 'hazard_type', NEW.hazard_type,
            'level', NEW.level, 'status', NEW.status, 'version', NEW.version)]);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER warnings_changed AFTER INSERT OR UPDATE ON warnings
FOR EACH ROW EXECUTE FUNCTION warnings_changed();

-- A shelter's status changed (standby, open, full, closed): one event per shelter, written by the
-- statement that changed it (a check-in that takes the last place turns it `full`). Free places
-- leave out those reserved for evacuees on their way (shelter_reserved, warnings.sql).
CREATE OR REPLACE FUNCTION shelters_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM outbox_write('shelter_status', ARRAY(
        SELECT jsonb_build_object('id', n.id, 'code', n.code, 'name', n.name, 'status', n.status,
                                  'old_status', o.status, 'capacity', n.capacity, 'occupancy', n.occupancy,
                                  'free', greatest(n.capacity - n.occupancy - shelter_reserved(n.id), 0))
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE n.status IS DISTINCT FROM o.status
        ORDER BY n.id));
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER shelters_status_changed AFTER UPDATE ON shelters
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION shelters_status_changed();

-- Places held for evacuees changed (a reservation booked, checked in against, released, or gone
-- with its order): the shelters' published `reserved` and `free` changed with them, so they are a
-- feature_changed of `shelters`, for the live map, webhooks and the nearest-shelter answers kept in
-- memory (lookup/shelters.py). One event per statement, naming the shelters whose held places moved.
-- Each branch names only the transition tables its trigger has (an insert has no old rows).
CREATE OR REPLACE FUNCTION shelter_reservations_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    moved bigint[];
    ids bigint[];
    boxes geometry[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(DISTINCT n.shelter_id) INTO moved FROM new_rows n;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(DISTINCT o.shelter_id) INTO moved FROM old_rows o;
    ELSE
        SELECT array_agg(DISTINCT m.shelter_id) INTO moved
        FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
        CROSS JOIN LATERAL (VALUES (n.shelter_id), (o.shelter_id)) AS m(shelter_id)
        WHERE (n.shelter_id, n.persons, n.checked_in, n.released_at)
              IS DISTINCT FROM (o.shelter_id, o.persons, o.checked_in, o.released_at)
          AND m.shelter_id IS NOT NULL;
    END IF;
    SELECT array_agg(s.id ORDER BY s.id), array_agg(ST_Envelope(s.geom) ORDER BY s.id)
    INTO ids, boxes
    FROM shelters s WHERE s.id = ANY(moved);
    PERFORM feature_changed_emit('shelters', 'update', ids, boxes);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER shelter_reservations_changed_insert AFTER INSERT ON shelter_reservations
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION shelter_reservations_changed();
CREATE OR REPLACE TRIGGER shelter_reservations_changed_update AFTER UPDATE ON shelter_reservations
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION shelter_reservations_changed();
CREATE OR REPLACE TRIGGER shelter_reservations_changed_delete AFTER DELETE ON shelter_reservations
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION shelter_reservations_changed();
