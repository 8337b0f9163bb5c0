"""Targeted warnings: rules, warnings, work orders with their history, and work-order events.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GEOLOGICAL = ("landslide", "collapse", "debris_flow", "ground_subsidence")
# At red, people threatened by these are evacuated; every other target is patrolled (with the
# evacuation that orange prepared kept ready: an action never weakens as the level rises).
EVACUATE_AT_RED = ("dangerous_building", *GEOLOGICAL)

# Which targets each hazard exposes: ("hp", kind) is a hazard point, ("rs", category) a risk source.
# The examples, plus what a city's emergency office would add for the hazards it left open.
_RAIN = [
    ("hp", "waterlogging"),
    *(("hp", k) for k in GEOLOGICAL),
    ("hp", "dangerous_building"),
    ("rs", "construction_site"),
    ("rs", "tailings_pond"),
]
_WIND = [("rs", "construction_site"), ("rs", "crowded_place"), ("hp", "dangerous_building")]
EXPOSURE: dict[str, list[tuple[str, str]]] = {
    "rainstorm": _RAIN,
    "flood": _RAIN,
    "typhoon": _WIND,
    "gale": _WIND,
    # Lightning ignites flammable stores; short, violent downpours flood low points.
    "thunderstorm": [
        ("rs", "hazardous_chemicals"),
        ("rs", "fireworks"),
        ("rs", "construction_site"),
        ("rs", "crowded_place"),
        ("hp", "waterlogging"),
    ],
    # Heat raises vapour pressure in chemical and pyrotechnic stores and strains crowded venues.
    "heat": [("rs", "hazardous_chemicals"), ("rs", "crowded_place"), ("rs", "fireworks")],
    "cold_wave": [("rs", "gas"), ("hp", "dangerous_building")],
    "snow": [("rs", "gas"), ("hp", "dangerous_building")],
    "fog": [("rs", "road_water_transport")],
    "hail": [("rs", "construction_site"), ("rs", "crowded_place"), ("hp", "dangerous_building")],
    "geological": [*(("hp", k) for k in GEOLOGICAL), ("rs", "tailings_pond")],
    "earthquake": [
        ("hp", "dangerous_building"),
        *(("hp", k) for k in GEOLOGICAL),
        ("rs", "tailings_pond"),
        ("rs", "hazardous_chemicals"),
        ("rs", "gas"),
        ("rs", "crowded_place"),
    ],
    # `other` exposes nothing until an admin says what it should (PUT /warning-rules/other).
}

ACTIONS_IN = "('none', 'notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate')"
HAZARDS_IN = (
    "('rainstorm', 'typhoon', 'gale', 'thunderstorm', 'heat', 'cold_wave', 'snow', 'fog', 'hail', 'flood',"
    " 'geological', 'earthquake', 'other')"
)
DUE_MINUTES = {"red": 60, "orange": 120, "yellow": 360, "blue": 1440}


def _rules() -> list[dict]:
    rows = []
    for hazard, targets in EXPOSURE.items():
        for short, kind in targets:
            rows.append(
                {
                    "hazard_type": hazard,
                    "target_type": "hazard_point" if short == "hp" else "risk_source",
                    "target_kind": kind,
                    "action_blue": "notify",
                    "action_yellow": "notify_patrol",
                    "action_orange": "patrol_prepare_evacuation",
                    "action_red": "evacuate"
                    if short == "hp" and kind in EVACUATE_AT_RED
                    else "patrol_prepare_evacuation",
                }
            )
    return rows


FUNCTIONS = r"""
-- Actions from weakest to strongest: an order is only ever escalated along this scale.
CREATE FUNCTION warning_action_rank(p_action text) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_position(ARRAY['none', 'notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate'],
                          p_action)
$$;

-- Work-order events for /events: one per order created, and one per order whose status, action,
-- cell or due time changed, written by whatever statement changed it (targeting or a worker).
-- The old and new rows meet in a FULL JOIN on purpose: PL/pgSQL caches this statement's plan from
-- its first call, often a one-row update, and a nested loop planned for one row takes seconds
-- when a warning later cancels 9,000 orders; a full join is always a hash or merge join.
CREATE FUNCTION work_orders_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (at, kind, payload)
    SELECT clock_timestamp(), 'work_order',
           jsonb_build_object('op', 'created', 'id', n.id, 'warning', n.warning_id, 'status', n.status,
                              'old_status', NULL, 'action', n.action, 'level', n.level, 'layer', n.layer,
                              'cell', n.cell_code, 'due_at', n.due_at, 'version', n.version)
    FROM new_rows n ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('gridrisk_events', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER work_orders_inserted AFTER INSERT ON work_orders
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION work_orders_inserted();

CREATE FUNCTION work_orders_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO events (at, kind, payload)
    SELECT clock_timestamp(), 'work_order',
           jsonb_build_object('op', 'updated', 'id', n.id, 'warning', n.warning_id, 'status', n.status,
                              'old_status', o.status, 'action', n.action, 'level', n.level, 'layer', n.layer,
                              'cell', n.cell_code, 'due_at', n.due_at, 'version', n.version)
    FROM new_rows n FULL JOIN old_rows o ON o.id = n.id
    WHERE (n.status, n.action, n.cell_code, n.due_at)
          IS DISTINCT FROM (o.status, o.action, o.cell_code, o.due_at)
    ORDER BY n.id;
    IF FOUND THEN
        PERFORM pg_notify('gridrisk_events', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER work_orders_updated AFTER UPDATE ON work_orders
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION work_orders_updated();

-- A warning issued, changed or cancelled.
CREATE FUNCTION warnings_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.version <> OLD.version OR NEW.status <> OLD.status THEN
        INSERT INTO events (at, kind, payload)
        VALUES (clock_timestamp(), 'warning',
                jsonb_build_object('op', CASE WHEN TG_OP = 'INSERT' THEN 'created'
                                              WHEN NEW.status = 'cancelled' AND OLD.status <> 'cancelled'
                                              THEN 'cancelled' ELSE 'updated' END,
                                   'id', NEW.id, 'identifier', NEW.identifier, 'hazard_type', NEW.hazard_type,
                                   'level', NEW.level, 'status', NEW.status, 'version', NEW.version));
        PERFORM pg_notify('gridrisk_events', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER warnings_changed AFTER INSERT OR UPDATE ON warnings
FOR EACH ROW EXECUTE FUNCTION warnings_changed();
"""

DROP_FUNCTIONS = """
DROP TRIGGER IF EXISTS warnings_changed ON warnings;
DROP FUNCTION IF EXISTS warnings_changed();
DROP TRIGGER IF EXISTS work_orders_updated ON work_orders;
DROP FUNCTION IF EXISTS work_orders_updated();
DROP TRIGGER IF EXISTS work_orders_inserted ON work_orders;
DROP FUNCTION IF EXISTS work_orders_inserted();
DROP FUNCTION IF EXISTS warning_action_rank(text);
"""


def upgrade() -> None:
    op.create_table(
        "warning_due_times",
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("due_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Text(), server_default="migration", nullable=False),
        sa.CheckConstraint(
            "level IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_warning_due_times_level")
        ),
        sa.CheckConstraint("due_minutes > 0", name=op.f("ck_warning_due_times_due_minutes")),
        sa.PrimaryKeyConstraint("level", name=op.f("pk_warning_due_times")),
    )
    op.create_table(
        "warning_rule_changes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("old", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("new", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_rule_changes")),
    )
    op.create_table(
        "warning_rules",
        sa.Column("hazard_type", sa.Text(), nullable=False),
        sa.Column("target_type", sa.Text(), nullable=False),
        sa.Column("target_kind", sa.Text(), nullable=False),
        sa.Column("action_blue", sa.Text(), nullable=False),
        sa.Column("action_yellow", sa.Text(), nullable=False),
        sa.Column("action_orange", sa.Text(), nullable=False),
        sa.Column("action_red", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Text(), server_default="migration", nullable=False),
        sa.CheckConstraint(
            " AND ".join(f"action_{lvl} IN {ACTIONS_IN}" for lvl in ("blue", "yellow", "orange", "red")),
            name=op.f("ck_warning_rules_actions"),
        ),
        sa.CheckConstraint(
            f"hazard_type IN {HAZARDS_IN}",
            name=op.f("ck_warning_rules_hazard_type"),
        ),
        sa.CheckConstraint(
            "target_type IN ('risk_source', 'hazard_point')", name=op.f("ck_warning_rules_target_type")
        ),
        sa.PrimaryKeyConstraint("hazard_type", "target_type", "target_kind", name=op.f("pk_warning_rules")),
    )
    op.create_table(
        "warnings",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("sender", sa.Text(), nullable=True),
        sa.Column("sent", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message", sa.Text(), nullable=False),
        sa.Column("hazard_type", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("headline", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("instruction", sa.Text(), nullable=True),
        sa.Column(
            "area",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("area_spec", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "affected_cells",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            f"hazard_type IN {HAZARDS_IN}",
            name=op.f("ck_warnings_hazard_type"),
        ),
        sa.CheckConstraint("level IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_warnings_level")),
        sa.CheckConstraint("source IN ('json', 'cap')", name=op.f("ck_warnings_source")),
        sa.CheckConstraint("status IN ('active', 'cancelled')", name=op.f("ck_warnings_status")),
        sa.CheckConstraint("NOT ST_IsEmpty(area) AND ST_IsValid(area)", name=op.f("ck_warnings_area")),
        sa.CheckConstraint("valid_until > valid_from", name=op.f("ck_warnings_validity")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warnings")),
        sa.UniqueConstraint("identifier", name=op.f("uq_warnings_identifier")),
    )
    op.create_index("ix_warnings_area", "warnings", ["area"], unique=False, postgresql_using="gist")
    op.create_index("ix_warnings_status_valid_until", "warnings", ["status", "valid_until"], unique=False)
    op.create_table(
        "warning_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("warning_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("changes", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("orders", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["warnings.id"],
            name=op.f("fk_warning_history_warning_id_warnings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warning_history")),
    )
    op.create_index("ix_warning_history_warning", "warning_history", ["warning_id", "id"], unique=False)
    op.create_table(
        "warning_messages",
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("warning_id", sa.BigInteger(), nullable=False),
        sa.Column("msg_type", sa.Text(), nullable=False),
        sa.Column("sent", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "msg_type IN ('Alert', 'Update', 'Cancel')", name=op.f("ck_warning_messages_msg_type")
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["warnings.id"],
            name=op.f("fk_warning_messages_warning_id_warnings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identifier", name=op.f("pk_warning_messages")),
    )
    op.create_index("ix_warning_messages_warning", "warning_messages", ["warning_id"], unique=False)
    op.create_table(
        "work_orders",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("warning_id", sa.BigInteger(), nullable=False),
        sa.Column("target_type", sa.Text(), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=False),
        sa.Column("target_kind", sa.Text(), nullable=False),
        sa.Column("target_code", sa.Text(), nullable=False),
        sa.Column("target_name", sa.Text(), nullable=False),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("layer", sa.Text(), server_default="comprehensive", nullable=False),
        sa.Column("cell_code", sa.Text(), nullable=True),
        sa.Column("district_code", sa.Text(), nullable=True),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("level", sa.Text(), nullable=False),
        sa.Column("threatened_persons", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("shelter_id", sa.BigInteger(), nullable=True),
        sa.Column("shelter_distance_m", sa.Float(), nullable=True),
        sa.Column("shelter_note", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), server_default="open", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.Text(), nullable=True),
        sa.Column("done_note", sa.Text(), nullable=True),
        sa.Column("photo_url", sa.Text(), nullable=True),
        sa.Column(
            "done_location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("done_distance_m", sa.Float(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_cause", sa.Text(), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), server_default=sa.text("1"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_by", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "action IN ('notify', 'notify_patrol', 'patrol_prepare_evacuation', 'evacuate')",
            name=op.f("ck_work_orders_action"),
        ),
        sa.CheckConstraint(
            "cancel_cause IS NULL OR cancel_cause IN ('not_targeted', 'warning_cancelled', 'manual')",
            name=op.f("ck_work_orders_cancel_cause"),
        ),
        sa.CheckConstraint("level IN ('red', 'orange', 'yellow', 'blue')", name=op.f("ck_work_orders_level")),
        sa.CheckConstraint(
            "status <> 'done' OR done_note IS NOT NULL", name=op.f("ck_work_orders_done_note")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'in_progress', 'done', 'cancelled')",
            name=op.f("ck_work_orders_status"),
        ),
        sa.CheckConstraint(
            "target_type IN ('risk_source', 'hazard_point')", name=op.f("ck_work_orders_target_type")
        ),
        sa.CheckConstraint("threatened_persons >= 0", name=op.f("ck_work_orders_persons")),
        sa.ForeignKeyConstraint(
            ["shelter_id"],
            ["shelters.id"],
            name=op.f("fk_work_orders_shelter_id_shelters"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["warnings.id"],
            name=op.f("fk_work_orders_warning_id_warnings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_orders")),
        sa.UniqueConstraint(
            "warning_id",
            "target_type",
            "target_id",
            name=op.f("uq_work_orders_warning_id_target_type_target_id"),
        ),
    )
    op.create_index("ix_work_orders_cell", "work_orders", ["layer", "cell_code", "status"], unique=False)
    op.create_index("ix_work_orders_status_due", "work_orders", ["status", "due_at"], unique=False)
    op.create_index("ix_work_orders_warning_status", "work_orders", ["warning_id", "status"], unique=False)
    op.create_table(
        "work_order_history",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("by", sa.Text(), nullable=False),
        sa.Column("op", sa.Text(), nullable=False),
        sa.Column("from_status", sa.Text(), nullable=True),
        sa.Column("to_status", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("photo_url", sa.Text(), nullable=True),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
            ),
            nullable=True,
        ),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["work_orders.id"],
            name=op.f("fk_work_order_history_order_id_work_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_order_history")),
    )
    op.create_index("ix_work_order_history_order", "work_order_history", ["order_id", "id"], unique=False)

    op.bulk_insert(
        sa.table(
            "warning_rules",
            *(
                sa.column(c)
                for c in (
                    "hazard_type",
                    "target_type",
                    "target_kind",
                    "action_blue",
                    "action_yellow",
                    "action_orange",
                    "action_red",
                )
            ),
        ),
        _rules(),
    )
    op.bulk_insert(
        sa.table("warning_due_times", sa.column("level"), sa.column("due_minutes", sa.Integer)),
        [{"level": k, "due_minutes": v} for k, v in DUE_MINUTES.items()],
    )
    op.execute(FUNCTIONS)


def downgrade() -> None:
    op.execute(DROP_FUNCTIONS)

    op.drop_index("ix_work_order_history_order", table_name="work_order_history")
    op.drop_table("work_order_history")
    op.drop_index("ix_work_orders_warning_status", table_name="work_orders")
    op.drop_index("ix_work_orders_status_due", table_name="work_orders")
    op.drop_index("ix_work_orders_cell", table_name="work_orders")
    op.drop_table("work_orders")
    op.drop_index("ix_warning_messages_warning", table_name="warning_messages")
    op.drop_table("warning_messages")
    op.drop_index("ix_warning_history_warning", table_name="warning_history")
    op.drop_table("warning_history")
    op.drop_index("ix_warnings_status_valid_until", table_name="warnings")
    op.drop_index("ix_warnings_area", table_name="warnings", postgresql_using="gist")
    op.drop_table("warnings")
    op.drop_table("warning_rules")
    op.drop_table("warning_rule_changes")
    op.drop_table("warning_due_times")
