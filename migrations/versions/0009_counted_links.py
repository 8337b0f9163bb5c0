"""Each item-to-cell link carries the level it counts with, so a write changes counts by a difference.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 12:40:00

Until 0008 every write recounted every item in each cell it touched (a district holds thousands);
from here a write adds its difference to the counts (recolour.sql, cell_assignment.sql). The links
learn the level each item counts with (NULL while it does not count), filled here from the items;
the counts may never go below zero. The functions that use the column come from source at head,
as do the per-registry history triggers that replace the generic record_history().
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEVELS = "('red', 'orange', 'yellow', 'blue')"

UPGRADE = f"""
ALTER TABLE source_cells ADD COLUMN level text
    CONSTRAINT ck_source_cells_level CHECK (level IS NULL OR level IN {LEVELS});
ALTER TABLE hazard_cells ADD COLUMN level text
    CONSTRAINT ck_hazard_cells_level CHECK (level IS NULL OR level IN {LEVELS});
UPDATE source_cells k SET level = s.level FROM risk_sources s
WHERE s.id = k.source_id AND s.status = 'active';
UPDATE hazard_cells k SET level = h.level FROM hazard_points h
WHERE h.id = k.hazard_id AND h.status NOT IN ('remediated', 'closed');
ALTER TABLE cell_risk ADD CONSTRAINT ck_cell_risk_counts
    CHECK (n_red >= 0 AND n_orange >= 0 AND n_yellow >= 0 AND n_blue >= 0);
-- Superseded by risk_refresh_items(text, bigint[], geometry[], text[]).
DROP FUNCTION IF EXISTS risk_refresh_items(text, bigint[], geometry[]);
-- Superseded by <table>_history(), one per registry (history.sql); its triggers are made again
-- from source, in this transaction.
DROP FUNCTION IF EXISTS record_history() CASCADE;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    # The view reads the column; an upgrade creates it again from source (the functions of 0008's
    # own commit are that commit's source, not these).
    op.execute(
        "DROP VIEW IF EXISTS cell_risk_items; ALTER TABLE cell_risk DROP CONSTRAINT ck_cell_risk_counts;"
        " ALTER TABLE source_cells DROP COLUMN level; ALTER TABLE hazard_cells DROP COLUMN level;"
    )
