"""Webhook endpoints and their deliveries: every outbox event an endpoint subscribes to, at least once."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gridrisk.db.tables.base import metadata
from gridrisk.vocabulary import DELIVERY_STATUSES, WEBHOOK_KINDS

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("url", Text, nullable=False),
    # Standard Webhooks signing secret, whsec_<base64>; shown to the admin who registers it.
    Column("secret", Text, nullable=False),
    Column("kinds", ARRAY(Text), nullable=False),
    Column("description", Text),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("disabled_reason", Text),
    # The delivery worker that holds the endpoint until then (one worker per endpoint: in order).
    Column("lease_until", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("url ~ '^https?://'", name="url"),
    CheckConstraint(
        f"cardinality(kinds) > 0 AND kinds <@ ARRAY{list(WEBHOOK_KINDS)!r}::text[]", name="kinds"
    ),
)

# One row per event per endpoint, written in the event's own transaction (outbox_write).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("endpoint_id", BigInteger, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", BigInteger, nullable=False),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("event_at", DateTime(timezone=True), nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="status"),
    UniqueConstraint("endpoint_id", "event_id"),
    Index("ix_webhook_deliveries_pending", "endpoint_id", "id", postgresql_where=text("status = 'pending'")),
)
