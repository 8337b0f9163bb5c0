"""Baseline: the schema migrations 0001-0007 built (tables, indexes, reference rows), in one step.

Revision ID: 0007
Revises:
Create Date: 2026-12-02 09:00:00

The seven migrations were squashed into 0007_baseline.sql (tables and indexes) and
0007_baseline_rows.sql (reference rows) beside this file. The id stays 0007, so a
database that ran them is at this revision already and goes on with 0008. Functions, triggers and
views are source code (src/gridrisk/db/functions), applied after the migrations (migrations/env.py).
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from gridrisk.db.functions import drop_functions, run_script

revision: str = "0007"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Every table 0007_baseline.sql creates (dropped together, so their order does not matter).
TABLES = (
    "api_keys city_parts layer_imports layers cells cell_overlaps cell_workers cell_pieces"
    " assessment_thresholds events risk_categories threshold_changes risk_sources cell_colour_history"
    " cell_pins cell_risk risk_source_history source_cells hazard_points shelter_classes"
    " hazard_point_history shelters hazard_cells shelter_history warning_due_times warning_rule_changes"
    " warning_rules warnings warning_history warning_messages work_orders work_order_history"
).split()


def upgrade() -> None:
    for name in ("0007_baseline.sql", "0007_baseline_rows.sql"):
        run_script(op.get_bind(), Path(__file__).with_name(name).read_text(encoding="utf-8"))


def downgrade() -> None:
    # The postgis extension stays: other schemas in the database may use it.
    drop_functions(op.get_bind())
    op.execute(f"DROP TABLE {', '.join(TABLES)}")
