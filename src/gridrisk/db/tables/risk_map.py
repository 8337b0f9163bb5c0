"""Risk sources and the four-colour map: categories, thresholds, sources, cell links, colours, pins."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from gridrisk.db.tables.base import (
    change_log,
    metadata,
    registry_versioning,
    site_geometry,
    version_history,
)
from gridrisk.vocabulary import (
    LEVELS,
    METHODS,
    SOURCE_STATUSES,
)

risk_categories = Table(
    "risk_categories",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("name_en", Text, nullable=False),
)

# Score thresholds per method and level: a score reaches LEVEL when it is above min_score (or
# equal to it when min_inclusive). The highest level reached wins; blue is the floor.
assessment_thresholds = Table(
    "assessment_thresholds",
    metadata,
    Column("method", Text, primary_key=True),
    Column("level", Text, primary_key=True),
    Column("min_score", Float, nullable=False),
    Column("min_inclusive", Boolean, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False, server_default="migration"),
    CheckConstraint("method IN ('LEC', 'LS')", name="method"),
    CheckConstraint("level IN ('red', 'orange', 'yellow')", name="level"),
)

threshold_changes = change_log("threshold_changes", Column("method", Text, nullable=False))

risk_sources = Table(
    "risk_sources",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("category", Text, ForeignKey("risk_categories.code"), nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Column("address", Text),
    Column("plate_code", Text, unique=True),
    Column("enterprise", Text),
    Column("department", Text),
    # People usually on site (staff, residents, visitors): whom an evacuation order moves.
    Column("persons", Integer, nullable=False, server_default=text("0")),
    Column("method", Text, nullable=False),
    Column("l", Float),
    Column("e", Float),
    Column("c", Float),
    Column("s", Float),
    Column("score", Float),
    # The level the method's thresholds give, and the direct level an operator may set instead.
    Column("computed_level", Text),
    Column("override_level", Text),
    Column("override_reason", Text),
    Column("level", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    *registry_versioning(),
    CheckConstraint(f"method IN {METHODS!r}", name="method"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {SOURCE_STATUSES!r}", name="status"),
    CheckConstraint("persons >= 0", name="persons"),
    *site_geometry("risk_sources"),
    Index("ix_risk_sources_category_level", "category", "level"),
)

# Every version of every risk source: who, when, what changed, and the state after it.
risk_source_history = version_history(
    "risk_source_history",
    "source_id",
    "risk_sources",
    Column("level", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Index("ix_risk_source_history_at", "at"),
)

# Which cells (of every layer) each risk source lies in, and the level it counts with there (NULL
# while it does not count: suspended or closed); maintained on every write.
source_cells = Table(
    "source_cells",
    metadata,
    Column("source_id", BigInteger, ForeignKey("risk_sources.id", ondelete="CASCADE"), primary_key=True),
    Column("cell_id", BigInteger, ForeignKey("cells.id", ondelete="CASCADE"), primary_key=True),
    Column("layer", Text, nullable=False),
    Column("level", Text),
    CheckConstraint(f"level IS NULL OR level IN {LEVELS!r}", name="level"),
    Index("ix_source_cells_cell", "cell_id"),
)

# The four-colour map: one row per cell of every layer, current at every commit.
cell_risk = Table(
    "cell_risk",
    metadata,
    Column("cell_id", BigInteger, ForeignKey("cells.id", ondelete="CASCADE"), primary_key=True),
    Column("layer", Text, nullable=False),
    Column("code", Text, nullable=False),
    Column("computed_colour", Text, nullable=False, server_default="blue"),
    Column("pinned_colour", Text),
    Column("pin_reason", Text),
    Column("pinned_by", Text),
    Column("pinned_at", DateTime(timezone=True)),
    Column("colour", Text, nullable=False, server_default="blue"),
    Column("score", Float, nullable=False, server_default=text("0")),
    Column("n_red", Integer, nullable=False, server_default=text("0")),
    Column("n_orange", Integer, nullable=False, server_default=text("0")),
    Column("n_yellow", Integer, nullable=False, server_default=text("0")),
    Column("n_blue", Integer, nullable=False, server_default=text("0")),
    Column("changed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(f"colour IN {LEVELS!r}", name="colour"),
    CheckConstraint(f"computed_colour IN {LEVELS!r}", name="computed_colour"),
    CheckConstraint(f"pinned_colour IS NULL OR pinned_colour IN {LEVELS!r}", name="pinned_colour"),
    # Kept by adding each write's difference (recolour.sql): a count below zero is a lost update.
    CheckConstraint("n_red >= 0 AND n_orange >= 0 AND n_yellow >= 0 AND n_blue >= 0", name="counts"),
    Index("ix_cell_risk_layer_colour", "layer", "colour"),
)

# Every colour change of every cell, for `?at=` (the map as it was) and for accountability.
cell_colour_history = Table(
    "cell_colour_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("cell_id", BigInteger, ForeignKey("cells.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("old", Text, nullable=False),
    Column("new", Text, nullable=False),
    Column("computed", Text, nullable=False),
    Column("counts", JSONB, nullable=False),
    Index("ix_cell_colour_history_cell_at", "cell_id", "at"),
)

cell_pins = Table(
    "cell_pins",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("cell_id", BigInteger, ForeignKey("cells.id", ondelete="CASCADE"), nullable=False),
    Column("colour", Text),
    Column("reason", Text, nullable=False),
    Column("by", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("action", Text, nullable=False),
)

# The outbox of live events (SSE): written in the same transaction as the change it reports.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
)
