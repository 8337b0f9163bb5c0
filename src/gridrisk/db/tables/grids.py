"""Keys, layers and their cells, the crosswalk, imports and the events outbox."""

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
    ForeignKeyConstraint,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from gridrisk.db.tables.base import metadata
from gridrisk.vocabulary import (
    LAYER_KINDS,
    ROLES,
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    # The public, non-secret part of the key, used to find the row before the hash compare.
    Column("prefix", Text, nullable=False, unique=True),
    Column("key_hash", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    CheckConstraint(f"role IN {ROLES!r}", name="role"),
)

layers = Table(
    "layers",
    metadata,
    Column("name", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    # Bumped on every import so caches and clients can tell one geometry generation from the next.
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("imported_at", DateTime(timezone=True)),
    Column("source", Text),
    # Import-time figures that are too costly per request: gap and overlap areas in m².
    Column("stats", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    CheckConstraint(f"kind IN {LAYER_KINDS!r}", name="kind"),
)

cells = Table(
    "cells",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("layer", Text, ForeignKey("layers.name", ondelete="CASCADE"), nullable=False),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("name_en", Text),
    Column("geom", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    Column("area_m2", Float, nullable=False),
    Column("population", BigInteger, nullable=False, server_default=text("0")),
    Column("district_code", Text),
    Column("street_code", Text),
    Column("community_code", Text),
    Column("props", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("layer", "code"),
    CheckConstraint("population >= 0", name="population"),
    CheckConstraint("area_m2 >= 0", name="area"),
    CheckConstraint("NOT ST_IsEmpty(geom) AND ST_IsValid(geom)", name="geom_valid"),
    Index("ix_cells_geom", "geom", postgresql_using="gist"),
    Index("ix_cells_layer_district", "layer", "district_code"),
)

# Cells cut into pieces of at most 64 vertices (ST_Subdivide): point lookups then test a few
# vertices behind the index instead of a whole district outline with thousands.
cell_pieces = Table(
    "cell_pieces",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("cell_id", BigInteger, ForeignKey("cells.id", ondelete="CASCADE"), nullable=False),
    Column("layer", Text, nullable=False),
    Column("geom", Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False),
    Index("ix_cell_pieces_geom", "geom", postgresql_using="gist"),
    Index("ix_cell_pieces_cell", "cell_id"),
)

# The city outline (union of the district layer), cut into small pieces so that the
# "is this coordinate inside the city?" test is an index probe against a few vertices.
city_parts = Table(
    "city_parts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("geom", Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False),
    Index("ix_city_parts_geom", "geom", postgresql_using="gist"),
)

# The city this database serves: one row. Its metric CRS measures every area and overlap (cells,
# the crosswalk, import checks); `metric_crs_auto` follows the districts' centre when they load.
city_profile = Table(
    "city_profile",
    metadata,
    Column("id", Boolean, primary_key=True, server_default=text("true")),
    Column("name", Text, nullable=False),
    Column("name_en", Text),
    Column("metric_srid", Integer, nullable=False),
    Column("metric_crs_auto", Boolean, nullable=False, server_default=text("true")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id", name="one_row"),
)

cell_workers = Table(
    "cell_workers",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("layer", Text, nullable=False),
    # Attached by code, not by cell id: a re-import keeps codes, so workers survive it.
    Column("cell_code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("phone", Text),
    Column("api_key_id", BigInteger, ForeignKey("api_keys.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ForeignKeyConstraint(
        ["layer", "cell_code"],
        ["cells.layer", "cells.code"],
        name="fk_cell_workers_cell",
        ondelete="CASCADE",
        onupdate="CASCADE",
    ),
    Index("ix_cell_workers_cell", "layer", "cell_code"),
    Index("ix_cell_workers_api_key", "api_key_id"),
)

# The crosswalk between layers: one row per ordered pair of overlapping cells.
cell_overlaps = Table(
    "cell_overlaps",
    metadata,
    Column("layer", Text, nullable=False, primary_key=True),
    Column("code", Text, nullable=False, primary_key=True),
    Column("other_layer", Text, nullable=False, primary_key=True),
    Column("other_code", Text, nullable=False, primary_key=True),
    Column("area_m2", Float, nullable=False),
    # Share of THIS cell's area covered by the other cell (0..1).
    Column("share", Float, nullable=False),
    # Share of the OTHER cell's area covered by this cell (0..1).
    Column("other_share", Float, nullable=False),
    ForeignKeyConstraint(
        ["layer", "code"], ["cells.layer", "cells.code"], name="fk_cell_overlaps_cell", ondelete="CASCADE"
    ),
    ForeignKeyConstraint(
        ["other_layer", "other_code"],
        ["cells.layer", "cells.code"],
        name="fk_cell_overlaps_other",
        ondelete="CASCADE",
    ),
    Index("ix_cell_overlaps_other", "other_layer", "other_code"),
)

# One row per import attempt: the validation report is kept for the record.
layer_imports = Table(
    "layer_imports",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("layer", Text, nullable=False),
    Column("source", Text),
    Column("ok", Boolean, nullable=False),
    Column("report", JSONB, nullable=False),
    Column("cell_count", Integer, nullable=False, server_default=text("0")),
    Column("duration_s", Float),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
