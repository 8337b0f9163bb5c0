"""The schema's MetaData, and the column groups every registry, history and change log shares."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

# Constraint names are stable and meaningful: errors.py may report them to clients.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def stamp() -> list[Column]:
    """When and by whom a row was written: `at` (now) and `by`."""
    return [
        Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("by", Text, nullable=False),
    ]


def registry_versioning() -> list[Column]:
    """A registry row's version (If-Match) and who created and last changed it, when."""
    return [
        Column("version", Integer, nullable=False, server_default=text("1")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("created_by", Text, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", Text, nullable=False),
    ]


def site_geometry(table: str) -> list:
    """A registry site: a valid, non-empty point or polygon, with its spatial index."""
    return [
        CheckConstraint(
            "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')"
            " AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)",
            name="geom",
        ),
        Index(f"ix_{table}_geom", "geom", postgresql_using="gist"),
    ]


def version_history(name: str, owner_column: str, owner_table: str, *extra) -> Table:
    """Every version of a registry's rows: who, when, which operation, which fields changed."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger, primary_key=True),
        Column(owner_column, BigInteger, ForeignKey(f"{owner_table}.id", ondelete="CASCADE"), nullable=False),
        Column("version", Integer, nullable=False),
        *stamp(),
        Column("op", Text, nullable=False),
        Column("changes", JSONB, nullable=False),
        *extra,
        UniqueConstraint(owner_column, "version"),
    )


def change_log(name: str, subject: Column) -> Table:
    """Every change of an admin-edited setting: who, when, what, the old and the new value, why."""
    return Table(
        name,
        metadata,
        Column("id", BigInteger, primary_key=True),
        *stamp(),
        subject,
        Column("old", JSONB, nullable=False),
        Column("new", JSONB, nullable=False),
        Column("reason", Text),
    )
