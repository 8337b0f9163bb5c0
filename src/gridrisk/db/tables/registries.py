"""Shelters and hazard points: the registries beside risk sources, with their history and cell links."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from gridrisk.db.tables.base import (
    metadata,
    registry_versioning,
    site_geometry,
    version_history,
)
from gridrisk.vocabulary import (
    HAZARD_KINDS,
    HAZARD_STATUSES,
    LEVELS,
    SHELTER_STATUSES,
)

# Planning figures per shelter class (SPEC.md "Shelters"); configurable, so kept as data.
shelter_classes = Table(
    "shelter_classes",
    metadata,
    Column("class", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("service_radius_m", Float, nullable=False),
    Column("m2_per_person", Float, nullable=False),
    Column("min_effective_area_m2", Float, nullable=False, server_default=text("2000")),
    CheckConstraint("service_radius_m > 0 AND m2_per_person > 0", name="positive"),
)

shelters = Table(
    "shelters",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("class", Text, ForeignKey("shelter_classes.class"), nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Column("total_area_m2", Float),
    Column("effective_area_m2", Float),
    Column("capacity", Integer, nullable=False),
    Column("occupancy", Integer, nullable=False, server_default=text("0")),
    Column("status", Text, nullable=False, server_default="standby"),
    Column("facilities", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("address", Text),
    Column("district_code", Text),
    Column("managing_unit", Text),
    *registry_versioning(),
    CheckConstraint(f"status IN {SHELTER_STATUSES!r}", name="status"),
    CheckConstraint("capacity >= 0 AND occupancy >= 0 AND occupancy <= capacity", name="occupancy"),
    CheckConstraint(
        "total_area_m2 IS NULL OR effective_area_m2 IS NULL OR effective_area_m2 <= total_area_m2",
        name="areas",
    ),
    *site_geometry("shelters"),
    # Nearest-shelter queries order by true distance: KNN on geography uses this index.
    Index("ix_shelters_geog", text("(geom::geography)"), postgresql_using="gist"),
)

shelter_history = version_history(
    "shelter_history",
    "shelter_id",
    "shelters",
)

hazard_points = Table(
    "hazard_points",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Column("threatened_persons", Integer, nullable=False, server_default=text("0")),
    Column("property_value", Float, nullable=False, server_default=text("0")),
    Column("level", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="identified"),
    # When each status was entered: {"identified": "...", "monitoring": "...", ...}.
    Column("status_dates", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("responsible_person", Text),
    Column("responsible_unit", Text),
    Column("notes", Text),
    Column("address", Text),
    Column("district_code", Text),
    *registry_versioning(),
    CheckConstraint(f"kind IN {HAZARD_KINDS!r}", name="kind"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {HAZARD_STATUSES!r}", name="status"),
    CheckConstraint("threatened_persons >= 0 AND property_value >= 0", name="nonnegative"),
    *site_geometry("hazard_points"),
    Index("ix_hazard_points_kind_status", "kind", "status"),
)

hazard_point_history = version_history(
    "hazard_point_history",
    "hazard_id",
    "hazard_points",
)

# Which cells each hazard point lies in, and the level it counts with (NULL once remediated or
# closed); maintained by triggers exactly like source_cells.
hazard_cells = Table(
    "hazard_cells",
    metadata,
    Column("hazard_id", BigInteger, ForeignKey("hazard_points.id", ondelete="CASCADE"), primary_key=True),
    Column("cell_id", BigInteger, ForeignKey("cells.id", ondelete="CASCADE"), primary_key=True),
    Column("layer", Text, nullable=False),
    Column("level", Text),
    CheckConstraint(f"level IS NULL OR level IN {LEVELS!r}", name="level"),
    Index("ix_hazard_cells_cell", "cell_id"),
)
