"""Vulnerable sites, rescue teams and supply depots; what warnings need of them, and the bookings.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 16:00:00

Targeted warnings reach a third kind of target, the vulnerable sites (承灾体: schools, nursing
homes, underpasses, underground garages, low-lying blocks, ...), whose evacuation orders carry the
people there. What an order needs beyond its action is a rule too (warning_rule_needs: a team with a
capability, or supplies per target and per person); the matching books rescue teams, shelter places
and depot stock for the orders (work_order_teams, shelter_reservations, supply_reservations), and
each order names who answers for it. The catalogue holds Nanjing's 21 categories of relief
supplies. Orders may now end as expired (cancel cause `expired`). The tables and rows are in the
.sql files beside this one.
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from gridrisk.db.functions import run_script

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for name in ("0011_response_resources.sql", "0011_response_resources_rows.sql"):
        run_script(op.get_bind(), Path(__file__).with_name(name).read_text(encoding="utf-8"))


def downgrade() -> None:
    op.execute(
        "DELETE FROM work_orders WHERE target_type = 'vulnerable_site';"
        " DELETE FROM warning_rules WHERE target_type = 'vulnerable_site';"
        " UPDATE work_orders SET cancel_cause = 'warning_cancelled' WHERE cancel_cause = 'expired';"
        " DROP TABLE supply_reservations, shelter_reservations, work_order_teams, warning_rule_needs,"
        " supply_depot_history, supply_depots, supply_items, rescue_team_history, rescue_teams,"
        " vulnerable_site_history, vulnerable_sites CASCADE;"
        " ALTER TABLE work_orders DROP COLUMN responsible_person, DROP COLUMN responsible_phone,"
        " DROP COLUMN responsible_unit, DROP COLUMN match_notes;"
        " ALTER TABLE work_orders DROP CONSTRAINT ck_work_orders_target_type, ADD CONSTRAINT"
        " ck_work_orders_target_type CHECK (target_type IN ('risk_source', 'hazard_point'));"
        " ALTER TABLE work_orders DROP CONSTRAINT ck_work_orders_cancel_cause, ADD CONSTRAINT"
        " ck_work_orders_cancel_cause CHECK (cancel_cause IS NULL OR cancel_cause IN"
        " ('not_targeted', 'warning_cancelled', 'manual'));"
        " ALTER TABLE warning_rules DROP CONSTRAINT ck_warning_rules_target_type, ADD CONSTRAINT"
        " ck_warning_rules_target_type CHECK (target_type IN ('risk_source', 'hazard_point'));"
    )
