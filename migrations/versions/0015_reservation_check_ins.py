"""Shelter check-ins use up the places reserved for the evacuees checking in.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 18:00:00

Until now a reservation held its places until the work order ended, while the evacuees it was for
also counted in the occupancy once they arrived: a shelter looked fuller than it was, and the
matching could turn new evacuees away from places that were free. A check-in naming the order
(`POST /shelters/{id}/occupancy {"delta", "order_id"}`) now moves the people from reserved to
occupied (shelter_reservations.checked_in); shelter_reserved() and every free-place figure count
persons − checked_in. The statements are in the .sql file beside this one.
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from gridrisk.db.functions import run_script

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = Path(__file__).with_name("0015_reservation_check_ins.sql").read_text(encoding="utf-8")
    run_script(op.get_bind(), text)


def downgrade() -> None:
    op.execute("ALTER TABLE shelter_reservations DROP COLUMN checked_in")
