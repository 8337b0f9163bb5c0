"""Statement triggers join their old and new rows with a FULL JOIN, which is never quadratic.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 10:10:00

PL/pgSQL caches a trigger's plan from its first call. Transition tables have no statistics, so a
plan made for a one-row API write joins old and new rows with a nested loop; reused for a
100,000-row bulk upsert on the same pooled connection it compares every row with every other
(measured: 6,000 rows took 14 s after five one-row updates, 0.6 s on a fresh connection). A FULL
JOIN cannot run as a nested loop, so the planner must hash or merge. The tests use IS DISTINCT FROM
(not strict) so that PostgreSQL does not turn the FULL JOIN back into an inner one; in an UPDATE
every id is on both sides, so the result is the same as before.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _after_update(table: str, refresh: str, join: str, distinct: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION {table}_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM {refresh}(ARRAY(
        SELECT n.id FROM new_rows n {join} old_rows o ON o.id = n.id
        WHERE ST_AsEWKB(n.geom) {distinct} ST_AsEWKB(o.geom) OR n.level {distinct} o.level
           OR n.status {distinct} o.status));
    RETURN NULL;
END $$;
"""


def _history(join: str, distinct: str) -> str:
    return f"""
CREATE OR REPLACE FUNCTION risk_sources_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO risk_source_history (source_id, version, at, by, op, changes, level, status, geom)
        SELECT n.id, n.version, n.updated_at, n.updated_by, 'create',
               (SELECT coalesce(jsonb_object_agg(k, jsonb_build_array(NULL, v)), '{{}}'::jsonb)
                FROM jsonb_each(risk_source_doc(n)) AS d(k, v) WHERE v <> 'null'::jsonb),
               n.level, n.status, n.geom
        FROM new_rows n;
    ELSE
        INSERT INTO risk_source_history (source_id, version, at, by, op, changes, level, status, geom)
        SELECT n.id, n.version, n.updated_at, n.updated_by,
               CASE WHEN n.status = 'closed' AND o.status <> 'closed' THEN 'close' ELSE 'update' END,
               (SELECT coalesce(jsonb_object_agg(d.k, jsonb_build_array(od -> d.k, d.v)), '{{}}'::jsonb)
                FROM jsonb_each(risk_source_doc(n)) AS d(k, v), risk_source_doc(o) AS od
                WHERE (od -> d.k) IS DISTINCT FROM d.v),
               n.level, n.status, n.geom
        FROM new_rows n {join} old_rows o ON o.id = n.id
        WHERE n.version {distinct} o.version;
    END IF;
    RETURN NULL;
END $$;
"""


def _all(join: str, distinct: str) -> str:
    return (
        _after_update("risk_sources", "risk_refresh_sources", join, distinct)
        + _after_update("hazard_points", "hazard_refresh", join, distinct)
        + _history(join, distinct)
    )


def upgrade() -> None:
    op.execute(_all("FULL JOIN", "IS DISTINCT FROM"))


def downgrade() -> None:
    op.execute(_all("JOIN", "<>"))
