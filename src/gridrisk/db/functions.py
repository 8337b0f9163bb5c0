"""The database's functions, triggers and views: applied from their sources in db/functions/*.sql.

Each file holds the current definition of everything it defines (`CREATE OR REPLACE` for
functions, views and triggers alike), so applying the files is idempotent and brings any database
at the head revision to exactly what they say. migrations/env.py applies them in the migration
transaction whenever an upgrade reaches the head revision; a change to a file reaches existing
databases with the next migration (its body may be empty when the schema does not change).
"""

from __future__ import annotations

from importlib import resources

import psycopg

# The order the files are applied in: a view or SQL function is checked against what exists when
# it is created, and a trigger needs its function, so each file may use only what comes before.
SOURCES = ("assessment", "outbox_events", "recolour", "cell_assignment", "history", "warnings", "shelters")

# Our functions and views: those in the current schema that no extension (PostGIS) owns.
OWN_OBJECTS_SQL = """
SELECT kind, name FROM (
    SELECT 'FUNCTION' AS kind, p.oid::regprocedure::text AS name, p.oid
    FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
    UNION ALL
    SELECT 'VIEW', c.oid::regclass::text, c.oid
    FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'v'
) o
WHERE NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = o.oid AND d.deptype = 'e')
ORDER BY kind, name
"""


def source(name: str) -> str:
    """The text of db/functions/NAME.sql."""
    return resources.files("gridrisk.db").joinpath("functions", f"{name}.sql").read_text(encoding="utf-8")


def driver(conn) -> psycopg.Connection:
    """The psycopg connection itself, or the one under a SQLAlchemy connection (Alembic's)."""
    return conn if isinstance(conn, psycopg.Connection) else conn.connection.driver_connection


def run_script(conn, text: str) -> None:
    """Run a script of several statements as it is (no parameters, so `%` and `:` stay literal)."""
    driver(conn).execute(text)


def apply_functions(conn) -> None:
    """Define every function, trigger and view from the sources, in order, in the caller's transaction."""
    for name in SOURCES:
        run_script(conn, source(name))


def own_objects(conn) -> list[tuple[str, str]]:
    """(kind, name) of every function and view of ours in the database."""
    return driver(conn).execute(OWN_OBJECTS_SQL).fetchall()


def drop_functions(conn) -> None:
    """Drop every function and view of ours, with the triggers that use them."""
    for kind, name in own_objects(conn):
        run_script(conn, f"DROP {kind} IF EXISTS {name} CASCADE")
