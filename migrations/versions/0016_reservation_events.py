"""Reservations announce the shelters whose held places they move, and nearest answers share one feature.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 22:00:00

Booking, checking in against or releasing a reservation changes a shelter's published `reserved`
and `free`, yet wrote no event: the live map, webhooks and anything kept current from the outbox
missed it. Statement triggers on shelter_reservations now write a feature_changed of `shelters`
(shelter_reservations_changed, db/functions/outbox_events.sql), and shelter_nearest_feature
(db/functions/shelters.sql) is the one definition of a nearest-shelter feature, used by the query
and by the answers kept in memory (lookup/shelters.py). Both are applied from source at head
(migrations/env.py); this revision carries no schema change of its own.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass  # the functions and triggers come from source (see the docstring)


def downgrade() -> None:
    op.execute(
        "DROP TRIGGER IF EXISTS shelter_reservations_changed_insert ON shelter_reservations;"
        " DROP TRIGGER IF EXISTS shelter_reservations_changed_update ON shelter_reservations;"
        " DROP TRIGGER IF EXISTS shelter_reservations_changed_delete ON shelter_reservations;"
        " DROP FUNCTION IF EXISTS shelter_reservations_changed();"
        " DROP FUNCTION IF EXISTS shelter_nearest_feature(shelters, integer, double precision);"
    )
