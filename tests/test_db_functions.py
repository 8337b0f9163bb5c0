"""The database's functions, triggers and views are exactly what src/gridrisk/db/functions/*.sql says.

Whatever a migration leaves behind (a function a file no longer defines, one defined inline, a
trigger under an old name) shows as a difference between the migrated database and the same
database with every function, view and trigger of ours dropped and the source files applied again.
"""

from __future__ import annotations

from importlib import resources

import psycopg

from gridrisk.db import functions, migrate
from gridrisk.settings import Settings

DEFINITIONS_SQL = """
SELECT 'function ' || p.oid::regprocedure, pg_get_functiondef(p.oid)
FROM pg_proc p WHERE p.pronamespace = current_schema()::regnamespace
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'view ' || c.oid::regclass, pg_get_viewdef(c.oid)
FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'v'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass, pg_get_triggerdef(t.oid)
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace
"""


def definitions(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute(DEFINITIONS_SQL).fetchall())


def assert_matches_sources(conn: psycopg.Connection) -> None:
    """The database's definitions equal those of the sources applied afresh (checked, then undone)."""
    migrated = definitions(conn)
    with conn.transaction(force_rollback=True):
        functions.drop_functions(conn)
        assert definitions(conn) == {}
        functions.apply_functions(conn)
        from_source = definitions(conn)
    missing = sorted(from_source.keys() - migrated.keys())
    extra = sorted(migrated.keys() - from_source.keys())
    assert not missing and not extra, f"not in the migrated database: {missing}; in no source: {extra}"
    drifted = sorted(k for k in migrated if migrated[k] != from_source[k])
    assert not drifted, f"differ from their source: {drifted}"


def test_every_source_file_is_applied():
    files = resources.files("gridrisk.db").joinpath("functions").iterdir()
    assert sorted(f.name.removesuffix(".sql") for f in files if f.name.endswith(".sql")) == sorted(
        functions.SOURCES
    )


def test_the_migrated_database_has_exactly_the_source_definitions(db_url):
    with psycopg.connect(db_url) as conn:
        defs = definitions(conn)
        assert "function risk_recolour(bigint[])" in defs and "view cell_risk_items" in defs
        assert "trigger shelters_history_update on shelters" in defs
        assert_matches_sources(conn)


def test_a_database_at_0007_with_the_per_table_copies_upgrades_to_the_sources(db_url):
    """What 0002-0007 defined per table goes; a row trigger left beside the new ones would double history."""
    settings = Settings(database_url=db_url)
    migrate.downgrade(settings, "0007")
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION risk_refresh_sources(bigint[]) RETURNS integer LANGUAGE sql AS 'SELECT 0';"
            "CREATE FUNCTION hazard_refresh(bigint[]) RETURNS integer LANGUAGE sql AS 'SELECT 0';"
            "CREATE FUNCTION risk_source_doc(risk_sources) RETURNS jsonb"
            " LANGUAGE sql AS 'SELECT ''{}''::jsonb';"
            "CREATE FUNCTION record_version_history() RETURNS trigger LANGUAGE plpgsql"
            " AS 'BEGIN RETURN NULL; END';"
            "CREATE TRIGGER shelters_history AFTER INSERT OR UPDATE ON shelters"
            " FOR EACH ROW EXECUTE FUNCTION record_version_history();"
            "CREATE TRIGGER hazard_points_history AFTER INSERT OR UPDATE ON hazard_points"
            " FOR EACH ROW EXECUTE FUNCTION record_version_history();"
            "CREATE FUNCTION feature_changed_insert() RETURNS trigger LANGUAGE plpgsql"
            " AS 'BEGIN RETURN NULL; END';"
            "CREATE OR REPLACE TRIGGER shelters_changed_insert AFTER INSERT ON shelters"
            " REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feature_changed_insert();"
        )
    migrate.upgrade(settings)
    assert migrate.current_revision(settings) == migrate.head_revision(settings)
    with psycopg.connect(db_url) as conn:
        assert_matches_sources(conn)


def test_an_upgrade_with_nothing_to_do_leaves_the_functions_alone(db_url):
    """Re-applying takes locks on the busiest tables: a `db upgrade` at head must not."""
    settings = Settings(database_url=db_url)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("CREATE OR REPLACE FUNCTION warning_action_rank(p_action text) RETURNS integer"
                     " LANGUAGE sql IMMUTABLE AS 'SELECT 0'")  # fmt: skip
        migrate.upgrade(settings)
        assert conn.execute("SELECT warning_action_rank('evacuate')").fetchone()[0] == 0
