"""Feature and layer change events in the outbox, so tile caches and live maps know what moved.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("risk_sources", "shelters", "hazard_points")

# One event per writing statement and table, never one per row (a 100,000-row import must not
# flood the outbox). It names the rows and, per row, the box around the old and the new geometry,
# since a moved feature leaves one place and arrives in another. Past ROW_LIMIT rows the event
# carries one box around all of them: coarser, but still never misses a changed tile.
ROW_LIMIT = 500

FUNCTIONS = rf"""
CREATE FUNCTION feature_changed_emit(p_table text, p_op text, p_ids bigint[], p_boxes geometry[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_ids, 1), 0);
    payload jsonb;
    ext box2d;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    IF n <= {ROW_LIMIT} THEN
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
    INSERT INTO events (at, kind, payload) VALUES (clock_timestamp(), 'feature_changed', payload);
    PERFORM pg_notify('gridrisk_events', '');
END $$;

-- Transition tables exist only for the event that has them, hence three small trigger functions.
CREATE FUNCTION feature_changed_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feature_changed_emit(TG_TABLE_NAME, 'insert',
        (SELECT array_agg(id ORDER BY id) FROM new_rows),
        (SELECT array_agg(ST_Envelope(geom) ORDER BY id) FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION feature_changed_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ids bigint[];
    boxes geometry[];
BEGIN
    -- Only rows whose geometry or any attribute changed; a no-op UPDATE emits nothing.
    -- FULL JOIN (every id is on both sides) because it cannot be a nested loop: this plan is cached
    -- from the first, often one-row, call and reused for a 100,000-row update, where a nested loop
    -- over two transition tables would be quadratic. The non-strict test keeps it a FULL JOIN.
    SELECT array_agg(n.id ORDER BY n.id),
           array_agg(ST_Envelope(ST_Collect(o.geom, n.geom)) ORDER BY n.id)
    INTO ids, boxes
    FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
    WHERE n IS DISTINCT FROM o;
    PERFORM feature_changed_emit(TG_TABLE_NAME, 'update', ids, boxes);
    RETURN NULL;
END $$;

CREATE FUNCTION feature_changed_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feature_changed_emit(TG_TABLE_NAME, 'delete',
        (SELECT array_agg(id ORDER BY id) FROM old_rows),
        (SELECT array_agg(ST_Envelope(geom) ORDER BY id) FROM old_rows));
    RETURN NULL;
END $$;

-- A re-imported grid layer bumps its version: every tile of that layer is then out of date.
CREATE FUNCTION layer_changed_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (at, kind, payload)
    SELECT clock_timestamp(), 'layer_changed', jsonb_build_object('layer', n.name, 'version', n.version)
    FROM new_rows n JOIN old_rows o USING (name)
    WHERE n.version <> o.version;
    IF FOUND THEN
        PERFORM pg_notify('gridrisk_events', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER layers_changed AFTER UPDATE ON layers
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION layer_changed_event();
"""


def _triggers(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_changed_insert AFTER INSERT ON {table}
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feature_changed_insert();
CREATE TRIGGER {table}_changed_update AFTER UPDATE ON {table}
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION feature_changed_update();
CREATE TRIGGER {table}_changed_delete AFTER DELETE ON {table}
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION feature_changed_delete();
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    for table in TABLES:
        op.execute(_triggers(table))


def downgrade() -> None:
    for table in TABLES:
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_changed_{event} ON {table}")
    op.execute("DROP TRIGGER IF EXISTS layers_changed ON layers")
    for fn in (
        "layer_changed_event()",
        "feature_changed_insert()",
        "feature_changed_update()",
        "feature_changed_delete()",
        "feature_changed_emit(text, text, bigint[], geometry[])",
    ):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
