"""Risk sources carry the people usually on site, so their evacuation orders plan for them.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 17:50:00

Until now an evacuation of a risk source (a city may set one in its warning rules, e.g. a
construction site under a red typhoon) planned 0 people and reserved no shelter place. Existing
sources start at 0 (unknown) until their registry says otherwise. The history trigger, written
from the table's columns when the functions are applied at head, records the new column too.
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from gridrisk.db.functions import run_script

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    text = Path(__file__).with_name("0014_risk_source_persons.sql").read_text(encoding="utf-8")
    run_script(op.get_bind(), text)


def downgrade() -> None:
    op.execute("ALTER TABLE risk_sources DROP COLUMN persons")
