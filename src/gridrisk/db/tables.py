"""The schema as GeoAlchemy2 tables: the single source Alembic migrations are written from."""

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
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from gridrisk.vocabulary import (
    ACTIONS,
    CANCEL_CAUSES,
    HAZARD_KINDS,
    HAZARD_STATUSES,
    HAZARD_TYPES,
    LAYER_KINDS,
    LEVELS,
    METHODS,
    ORDER_ACTIONS,
    ORDER_STATUSES,
    ROLES,
    SHELTER_STATUSES,
    SOURCE_STATUSES,
    TARGET_TYPES,
    WARNING_STATUSES,
)

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


# ---------------------------------------------------------------------------------------------
# Risk sources and the four-colour map (migration 0002).


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

threshold_changes = Table(
    "threshold_changes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("old", JSONB, nullable=False),
    Column("new", JSONB, nullable=False),
    Column("reason", Text),
)

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
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False),
    CheckConstraint(f"method IN {METHODS!r}", name="method"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {SOURCE_STATUSES!r}", name="status"),
    CheckConstraint(
        "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')"
        " AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)",
        name="geom",
    ),
    Index("ix_risk_sources_geom", "geom", postgresql_using="gist"),
    Index("ix_risk_sources_category_level", "category", "level"),
)

# Every version of every risk source: who, when, what changed, and the state after it.
risk_source_history = Table(
    "risk_source_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("source_id", BigInteger, ForeignKey("risk_sources.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("changes", JSONB, nullable=False),
    Column("level", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    UniqueConstraint("source_id", "version"),
    Index("ix_risk_source_history_at", "at"),
)

# Which cells (of every layer) each risk source lies in; maintained on every write.
source_cells = Table(
    "source_cells",
    metadata,
    Column("source_id", BigInteger, ForeignKey("risk_sources.id", ondelete="CASCADE"), primary_key=True),
    Column("cell_id", BigInteger, ForeignKey("cells.id", ondelete="CASCADE"), primary_key=True),
    Column("layer", Text, nullable=False),
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


# ---------------------------------------------------------------------------------------------
# Shelters and hazard points (migration 0003).


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
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False),
    CheckConstraint(f"status IN {SHELTER_STATUSES!r}", name="status"),
    CheckConstraint("capacity >= 0 AND occupancy >= 0 AND occupancy <= capacity", name="occupancy"),
    CheckConstraint(
        "total_area_m2 IS NULL OR effective_area_m2 IS NULL OR effective_area_m2 <= total_area_m2",
        name="areas",
    ),
    CheckConstraint(
        "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')"
        " AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)",
        name="geom",
    ),
    Index("ix_shelters_geom", "geom", postgresql_using="gist"),
    # Nearest-shelter queries order by true distance: KNN on geography uses this index.
    Index("ix_shelters_geog", text("(geom::geography)"), postgresql_using="gist"),
)

shelter_history = Table(
    "shelter_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("shelter_id", BigInteger, ForeignKey("shelters.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("changes", JSONB, nullable=False),
    UniqueConstraint("shelter_id", "version"),
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
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False),
    CheckConstraint(f"kind IN {HAZARD_KINDS!r}", name="kind"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {HAZARD_STATUSES!r}", name="status"),
    CheckConstraint("threatened_persons >= 0 AND property_value >= 0", name="nonnegative"),
    CheckConstraint(
        "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')"
        " AND NOT ST_IsEmpty(geom) AND ST_IsValid(geom)",
        name="geom",
    ),
    Index("ix_hazard_points_geom", "geom", postgresql_using="gist"),
    Index("ix_hazard_points_kind_status", "kind", "status"),
)

hazard_point_history = Table(
    "hazard_point_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("hazard_id", BigInteger, ForeignKey("hazard_points.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("changes", JSONB, nullable=False),
    UniqueConstraint("hazard_id", "version"),
)

# Which cells each hazard point lies in; maintained by triggers exactly like source_cells.
hazard_cells = Table(
    "hazard_cells",
    metadata,
    Column("hazard_id", BigInteger, ForeignKey("hazard_points.id", ondelete="CASCADE"), primary_key=True),
    Column("cell_id", BigInteger, ForeignKey("cells.id", ondelete="CASCADE"), primary_key=True),
    Column("layer", Text, nullable=False),
    Index("ix_hazard_cells_cell", "cell_id"),
)


# ---------------------------------------------------------------------------------------------
# Targeted warnings and work orders (migration 0006).


# Which kinds of target each hazard exposes, and the action each warning level demands of them.
warning_rules = Table(
    "warning_rules",
    metadata,
    Column("hazard_type", Text, primary_key=True),
    Column("target_type", Text, primary_key=True),
    # A risk-source category or a hazard-point kind, per target_type.
    Column("target_kind", Text, primary_key=True),
    Column("action_blue", Text, nullable=False),
    Column("action_yellow", Text, nullable=False),
    Column("action_orange", Text, nullable=False),
    Column("action_red", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False, server_default="migration"),
    CheckConstraint(f"hazard_type IN {HAZARD_TYPES!r}", name="hazard_type"),
    CheckConstraint(f"target_type IN {TARGET_TYPES!r}", name="target_type"),
    CheckConstraint(
        f"action_blue IN {ACTIONS!r} AND action_yellow IN {ACTIONS!r}"
        f" AND action_orange IN {ACTIONS!r} AND action_red IN {ACTIONS!r}",
        name="actions",
    ),
)

# How long a worker has to carry out an order, by the warning's level.
warning_due_times = Table(
    "warning_due_times",
    metadata,
    Column("level", Text, primary_key=True),
    Column("due_minutes", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False, server_default="migration"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint("due_minutes > 0", name="due_minutes"),
)

# Every change of the rules or due times: who, when, the old and the new set.
warning_rule_changes = Table(
    "warning_rule_changes",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("old", JSONB, nullable=False),
    Column("new", JSONB, nullable=False),
    Column("reason", Text),
)

warnings_ = Table(
    "warnings",
    metadata,
    Column("id", BigInteger, primary_key=True),
    # The issuer's identifier of the first message; later CAP messages are in warning_messages.
    Column("identifier", Text, nullable=False, unique=True),
    Column("sender", Text),
    Column("sent", DateTime(timezone=True), nullable=False),
    # The newest message applied, so that a late copy of an older one cannot roll the warning back.
    Column("last_message", Text, nullable=False),
    Column("hazard_type", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="active"),
    Column("valid_from", DateTime(timezone=True), nullable=False),
    Column("valid_until", DateTime(timezone=True), nullable=False),
    Column("headline", Text, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("instruction", Text),
    Column("area", Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False),
    # How the area was given: {"geometry": …} | {"districts": […]} | {"layer", "cells"} | {"cap": …}.
    Column("area_spec", JSONB, nullable=False),
    # Cells of every layer the area covers, {layer: [codes]}, computed when the area changes.
    Column("affected_cells", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("source", Text, nullable=False),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("created_by", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_reason", Text),
    CheckConstraint(f"hazard_type IN {HAZARD_TYPES!r}", name="hazard_type"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {WARNING_STATUSES!r}", name="status"),
    CheckConstraint("valid_until > valid_from", name="validity"),
    CheckConstraint("source IN ('json', 'cap')", name="source"),
    CheckConstraint("NOT ST_IsEmpty(area) AND ST_IsValid(area)", name="area"),
    Index("ix_warnings_area", "area", postgresql_using="gist"),
    Index("ix_warnings_status_valid_until", "status", "valid_until"),
)

# Every message identifier applied to a warning (a CAP Update or Cancel has its own identifier
# and names the earlier ones in `references`): re-posting any of them finds the same warning.
warning_messages = Table(
    "warning_messages",
    metadata,
    Column("identifier", Text, primary_key=True),
    Column("warning_id", BigInteger, ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
    Column("msg_type", Text, nullable=False),
    Column("sent", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    CheckConstraint("msg_type IN ('Alert', 'Update', 'Cancel')", name="msg_type"),
    Index("ix_warning_messages_warning", "warning_id"),
)

warning_history = Table(
    "warning_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("warning_id", BigInteger, ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("message", Text),
    Column("changes", JSONB, nullable=False),
    # What the targeting did to the work orders: {"created": n, "escalated": n, ...}.
    Column("orders", JSONB, nullable=False),
    Index("ix_warning_history_warning", "warning_id", "id"),
)

work_orders = Table(
    "work_orders",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("warning_id", BigInteger, ForeignKey("warnings.id", ondelete="CASCADE"), nullable=False),
    Column("target_type", Text, nullable=False),
    Column("target_id", BigInteger, nullable=False),
    Column("target_kind", Text, nullable=False),
    Column("target_code", Text, nullable=False),
    Column("target_name", Text, nullable=False),
    # A point on the target (its point on surface): where the worker goes, and the map's symbol.
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False), nullable=False),
    Column("layer", Text, nullable=False, server_default="comprehensive"),
    Column("cell_code", Text),
    Column("district_code", Text),
    Column("action", Text, nullable=False),
    # The warning level the action was set for (a downgrade never weakens an issued order).
    Column("level", Text, nullable=False),
    Column("threatened_persons", Integer, nullable=False, server_default=text("0")),
    Column("shelter_id", BigInteger, ForeignKey("shelters.id", ondelete="SET NULL")),
    Column("shelter_distance_m", Float),
    Column("shelter_note", Text),
    Column("status", Text, nullable=False, server_default="open"),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True)),
    Column("done_at", DateTime(timezone=True)),
    Column("done_by", Text),
    Column("done_note", Text),
    Column("photo_url", Text),
    Column("done_location", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("done_distance_m", Float),
    Column("cancelled_at", DateTime(timezone=True)),
    Column("cancel_cause", Text),
    Column("cancel_reason", Text),
    Column("version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_by", Text, nullable=False),
    # One order per target per warning, whatever the concurrency: re-posts update, never duplicate.
    UniqueConstraint("warning_id", "target_type", "target_id"),
    CheckConstraint(f"target_type IN {TARGET_TYPES!r}", name="target_type"),
    CheckConstraint(f"action IN {ORDER_ACTIONS!r}", name="action"),
    CheckConstraint(f"level IN {LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {ORDER_STATUSES!r}", name="status"),
    CheckConstraint(f"cancel_cause IS NULL OR cancel_cause IN {CANCEL_CAUSES!r}", name="cancel_cause"),
    CheckConstraint("status <> 'done' OR done_note IS NOT NULL", name="done_note"),
    CheckConstraint("threatened_persons >= 0", name="persons"),
    Index("ix_work_orders_warning_status", "warning_id", "status"),
    Index("ix_work_orders_cell", "layer", "cell_code", "status"),
    Index("ix_work_orders_status_due", "status", "due_at"),
)

# Every state change of every order: issue, escalation, transition, cancellation, reopening.
work_order_history = Table(
    "work_order_history",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", BigInteger, ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("by", Text, nullable=False),
    Column("op", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("note", Text),
    Column("photo_url", Text),
    Column("location", Geometry("POINT", srid=4326, spatial_index=False)),
    Column("distance_m", Float),
    Index("ix_work_order_history_order", "order_id", "id"),
)
