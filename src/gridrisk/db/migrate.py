"""Run Alembic migrations programmatically (CLI, tests and app start share this one runner)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from gridrisk.settings import Settings

# Tables PostGIS owns; they are not ours to migrate or compare.
FOREIGN_TABLES = frozenset({"spatial_ref_sys"})


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic filter: our tables only, with GeoAlchemy2's handling of spatial indexes."""
    from geoalchemy2 import alembic_helpers

    if type_ == "table" and name in FOREIGN_TABLES:
        return False
    return alembic_helpers.include_object(obj, name, type_, reflected, compare_to)


def migrations_dir() -> Path:
    """Where the Alembic scripts live: $GRIDRISK_MIGRATIONS_DIR, else the checkout's migrations/."""
    env = os.environ.get("GRIDRISK_MIGRATIONS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(settings: Settings) -> Config:
    """An Alembic Config bound to the settings' database, independent of the working directory."""
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["sqlalchemy_url"] = settings.sqlalchemy_url
    return cfg


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "-1") -> None:
    """Revert migrations down to REVISION ('base' removes everything)."""
    command.downgrade(alembic_config(settings), revision)


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    engine = create_engine(settings.sqlalchemy_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head_revision(settings: Settings) -> str | None:
    """The newest revision the code ships."""
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()
