"""Targeted warnings and work orders: rules, due times, warnings, messages, orders and their history."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from gridrisk.db.tables.base import (
    change_log,
    metadata,
    registry_versioning,
)
from gridrisk.vocabulary import (
    ACTIONS,
    CANCEL_CAUSES,
    HAZARD_TYPES,
    LEVELS,
    ORDER_ACTIONS,
    ORDER_STATUSES,
    TARGET_TYPES,
    WARNING_STATUSES,
)

# Which kinds of target each hazard exposes, and the action each warning level demands of them.
warning_rules = Table(
    "warning_rules",
    metadata,
    Column("hazard_type", Text, primary_key=True),
    Column("target_type", Text, primary_key=True),
    # A risk-source category or a hazard-point kind, per target_type.
    Column("target_kind", Text, primary_key=True),
    Column("action_blue", Text, nullable=False),
    Column("action_yellow", Text, nullable=False),
    Column("action_orange", Text, nullable=False),
    Column("action_red", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False, server_default="migration"),
    CheckConstraint(f"hazard_type IN {HAZARD_TYPES!r}", name="hazard_type"),
    CheckConstraint(f"target_type IN {TARGET_TYPES!r}", name="target_type"),
    CheckConstraint(
        f"action_blue IN {ACTIONS!r} AND action_yellow IN {ACTIONS!r}"
        f" AND action_orange IN {ACTIONS!r} AND action_red IN {ACTIONS!r}",
        name="actions",
    ),
)

# How long a worker has to carry out an order, by the warning's level.
warning_due_times = Table(
    "warning_due_times",
    metadata,
    Column("level", Text, primary_key=True),
    Column("due_minutes", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False, server_default="migration"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint("due_minutes > 0", name="due_minutes"),
)

# Every change of the rules or due times: who, when, the old and the new set.
warning_rule_changes = change_log("warning_rule_changes", Column("subject", Text, nullable=False))

warnings_ = Table(
    "warnings",
    metadata,
    Column("id", BigInteger, primary_key=True),
    # The issuer's identifier of the first message; later CAP messages are in warning_messages.
    Column("identifier", Text, nullable=False, unique=True),
    Column("sender", Text),
    Column("sent", DateTime(timezone=True), nullable=False),
    # The newest message applied, so that a late copy of an older one cannot roll the warning back.
    Column("last_message", Text, nullable=False),
    Column("hazard_type", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("headline", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("instruction", Text),
    Column("area", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    # How the area was given: {"geometry": …} | {"districts": […]} | {"layer", "cells"} | {"cap": …}.
    Column("area_spec", JSONB, nullable=False),
    # Cells of every layer the area covers, {layer: [codes]}, computed when the area changes.
    Column("affected_cells", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("source", Text, nullable=False),
    *registry_versioning(),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    CheckConstraint(f"hazard_type IN {HAZARD_TYPES!r}", name="hazard_type"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {WARNING_STATUSES!r}", name="status"),
    CheckConstraint("valid_until > valid_from", name="validity"),
    CheckConstraint("source IN ('json', 'cap')", name="source"),
    CheckConstraint("NOT ST_IsEmpty(area) AND ST_IsValid(area)", name="area"),
    Index("ix_warnings_area", "area", postgresql_using="gist"),
    Index("ix_warnings_status_valid_until", "status", "valid_until"),
)

# Every message identifier applied to a warning (a CAP Update or Cancel has its own identifier
# and names the earlier ones in `references`): re-posting any of them finds the same warning.
warning_messages = Table(
    "warning_messages",
    metadata,
    Column("identifier", Text, primary_key=True),
    Column("warning_id", BigInteger, ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
    Column("msg_type", Text, nullable=False),
    Column("sent", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    CheckConstraint("msg_type IN ('Alert', 'Update', 'Cancel')", name="msg_type"),
    Index("ix_warning_messages_warning", "warning_id"),
)

warning_history = Table(
    "warning_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("warning_id", BigInteger, ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("message", Text),
    Column("changes", JSONB, nullable=False),
    # What the targeting did to the work orders: {"created": n, "escalated": n, ...}.
    Column("orders", JSONB, nullable=False),
    Index("ix_warning_history_warning", "warning_id", "id"),
)

work_orders = Table(
    "work_orders",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("warning_id", BigInteger, ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
    Column("target_type", Text, nullable=False),
    Column("target_id", BigInteger, nullable=False),
    Column("target_kind", Text, nullable=False),
    Column("target_code", Text, nullable=False),
    Column("target_name", Text, nullable=False),
    # A point on the target (its point on surface): where the worker goes, and the map's symbol.
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("layer", Text, nullable=False, server_default="comprehensive"),
    Column("cell_code", Text),
    Column("district_code", Text),
    # Who answers for it: the cell's grid worker, and the target's responsible unit.
    Column("responsible_person", Text),
    Column("responsible_phone", Text),
    Column("responsible_unit", Text),
    Column("action", Text, nullable=False),
    # The warning level the action was set for (a downgrade never weakens an issued order).
    Column("level", Text, nullable=False),
    Column("threatened_persons", Integer, nullable=False, server_default=text("0")),
    Column("shelter_id", BigInteger, ForeignKey("shelters.id", ondelete="SET NULL")),
    Column("shelter_distance_m", Float),
    Column("shelter_note", Text),
    # What the matching could not book: [{"need": "team:water_rescue" | "item:sandbags" | "shelter",
    # "short": n, "message": "..."}]; empty when everything the order needs is booked.
    Column("match_notes", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("status", Text, nullable=False, server_default="open"),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("done_at", DateTime(timezone=True)),
    Column("done_by", Text),
    Column("done_note", Text),
    Column("photo_url", Text),
    Column("done_location", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("done_distance_m", Float),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_cause", Text),
    Column("cancel_reason", Text),
    # When the `work_order_overdue` event announced that the order passed its due time (once per
    # due time: a later due time clears it).
    Column("overdue_notified_at", DateTime(timezone=True)),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False),
    # One order per target per warning, whatever the concurrency: re-posts update, never duplicate.
    UniqueConstraint("warning_id", "target_type", "target_id"),
    CheckConstraint(f"target_type IN {TARGET_TYPES!r}", name="target_type"),
    CheckConstraint(f"action IN {ORDER_ACTIONS!r}", name="action"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {ORDER_STATUSES!r}", name="status"),
    CheckConstraint(f"cancel_cause IS NULL OR cancel_cause IN {CANCEL_CAUSES!r}", name="cancel_cause"),
    CheckConstraint("status <> 'done' OR done_note IS NOT NULL", name="done_note"),
    CheckConstraint("threatened_persons >= 0", name="persons"),
    Index("ix_work_orders_warning_status", "warning_id", "status"),
    Index("ix_work_orders_cell", "layer", "cell_code", "status"),
    Index("ix_work_orders_status_due", "status", "due_at"),
)

# Every state change of every order: issue, escalation, transition, cancellation, reopening.
work_order_history = Table(
    "work_order_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", BigInteger, ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("note", Text),
    Column("photo_url", Text),
    Column("location", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("distance_m", Float),
    Index("ix_work_order_history_order", "order_id", "id"),
)
