"""Two more kinds of event for webhooks and the live stream: an order overdue, a shelter's status.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 17:10:00

`work_order_overdue` announces, once per due time, an unfinished order that passed it (the expiry
job finds them: services/warning_expiry.py); work_orders.overdue_notified_at remembers it.
`shelter_status` is written by a trigger on shelters (db/functions/outbox_events.sql, applied from
source at head) when a shelter's status changes, e.g. to `full` when its last place is taken.
The statements are in the .sql file beside this one.
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from gridrisk.db.functions import run_script

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = Path(__file__).with_name("0013_overdue_and_shelter_events.sql").read_text(encoding="utf-8")
    run_script(op.get_bind(), text)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS shelters_status_changed ON shelters;"
        " DROP FUNCTION IF EXISTS shelters_status_changed();"
        " DELETE FROM webhook_deliveries WHERE kind IN ('work_order_overdue', 'shelter_status');"
        " UPDATE webhook_endpoints SET kinds = array_remove(array_remove(kinds, 'work_order_overdue'),"
        " 'shelter_status');"
        " DELETE FROM webhook_endpoints WHERE cardinality(kinds) = 0;"
        " ALTER TABLE webhook_endpoints DROP CONSTRAINT ck_webhook_endpoints_kinds, ADD CONSTRAINT"
        " ck_webhook_endpoints_kinds CHECK (cardinality(kinds) > 0 AND kinds <@ ARRAY['warning',"
        " 'work_order', 'cell_colour', 'feature_changed', 'layer_changed', 'cell_workers']::text[]);"
        " ALTER TABLE work_orders DROP COLUMN overdue_notified_at;"
    )
