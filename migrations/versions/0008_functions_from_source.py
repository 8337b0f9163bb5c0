"""Functions, triggers and views come from src/gridrisk/db/functions: drop the per-table copies.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:30:00

Until 0007 each registry table had its own item-to-cell refresh, update trigger and history
function, defined in migration strings. One generic set, applied from source after the migrations
(migrations/env.py), now serves every table; this drops what it replaces. A trigger whose name
lives on is dropped here too (its function goes) and created again from source in the same
transaction, so no write ever sees the map without its triggers.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SUPERSEDED = """
DROP TRIGGER IF EXISTS risk_sources_after_insert ON risk_sources;
DROP TRIGGER IF EXISTS risk_sources_after_update ON risk_sources;
DROP TRIGGER IF EXISTS risk_sources_history_insert ON risk_sources;
DROP TRIGGER IF EXISTS risk_sources_history_update ON risk_sources;
DROP TRIGGER IF EXISTS hazard_points_after_insert ON hazard_points;
DROP TRIGGER IF EXISTS hazard_points_after_update ON hazard_points;
DROP TRIGGER IF EXISTS hazard_points_history ON hazard_points;
DROP TRIGGER IF EXISTS shelters_history ON shelters;
DROP FUNCTION IF EXISTS risk_sources_after_insert(), risk_sources_after_update(), risk_sources_history(),
    hazard_points_after_insert(), hazard_points_after_update(), record_version_history(),
    risk_refresh_sources(bigint[]), hazard_refresh(bigint[]), risk_source_doc(risk_sources);
-- With the <table>_changed_insert and _delete triggers that use them (created again from source).
DROP FUNCTION IF EXISTS feature_changed_insert(), feature_changed_delete() CASCADE;
"""


def upgrade() -> None:
    op.execute(SUPERSEDED)


def downgrade() -> None:
    # 0007's schema is this one: the functions from source serve it, and the copies this revision
    # dropped are not brought back (they are in git history, 0002-0007).
    pass
