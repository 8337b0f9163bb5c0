"""Webhooks: endpoints admins register, and a delivery per event per endpoint.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 16:20:00

Other systems (the city's platform, SMS gateways, the duty office) are told what happens instead of
polling: outbox_write (db/functions/outbox_events.sql, applied from source at head) writes, in the
event's own transaction, one delivery for every enabled endpoint that subscribes to the event's
kind; services/webhook_delivery.py sends them (Standard Webhooks v1), in order per endpoint, at
least once. The tables are in the .sql file beside this one.
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from gridrisk.db.functions import run_script

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    run_script(op.get_bind(), Path(__file__).with_name("0012_webhooks.sql").read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute("DROP TABLE webhook_deliveries, webhook_endpoints")
