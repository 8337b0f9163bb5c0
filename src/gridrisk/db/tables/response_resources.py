"""What a warning's response draws on: vulnerable sites, rescue teams, supply depots, and their bookings.

Vulnerable sites (承灾体) are targets like risk sources and hazard points; rescue teams (救援队伍) and
supply depots (物资储备库) are what the matching books for work orders (services/warning_matching.py).
Live state is derived from the bookings, never counted twice: a team is deployed while it has an
unreleased booking, a shelter's or a depot's free amount is what it holds less its unreleased
reservations.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
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
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from gridrisk.db.tables.base import metadata, registry_versioning, site_geometry, version_history
from gridrisk.vocabulary import (
    ACTIONS,
    CAPABILITIES,
    DEPOT_LEVELS,
    HAZARD_TYPES,
    SITE_STATUSES,
    TARGET_TYPES,
    TEAM_TYPES,
    VULNERABLE_KINDS,
)

SETTABLE_TEAM_STATUSES = ("available", "off_duty", "closed")

vulnerable_sites = Table(
    "vulnerable_sites",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    # People usually present, and how many of them need help to move (children, patients, the old).
    Column("persons", Integer, nullable=False, server_default=text("0")),
    Column("persons_assisted", Integer, nullable=False, server_default=text("0")),
    Column("contact_person", Text),
    Column("contact_phone", Text),
    Column("responsible_unit", Text),
    Column("address", Text),
    Column("district_code", Text),
    Column("status", Text, nullable=False, server_default="active"),
    *registry_versioning(),
    CheckConstraint(f"kind IN {VULNERABLE_KINDS!r}", name="kind"),
    CheckConstraint(f"status IN {SITE_STATUSES!r}", name="status"),
    CheckConstraint("persons >= 0 AND persons_assisted >= 0 AND persons_assisted <= persons", name="persons"),
    *site_geometry("vulnerable_sites"),
    Index("ix_vulnerable_sites_kind", "kind"),
)

vulnerable_site_history = version_history("vulnerable_site_history", "vulnerable_site_id", "vulnerable_sites")

rescue_teams = Table(
    "rescue_teams",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("team_type", Text, nullable=False),
    Column("sector", Text, nullable=False),
    Column("capabilities", ARRAY(Text), nullable=False),
    Column("members", Integer, nullable=False, server_default=text("0")),
    Column("equipment", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    # The base: where the team sets out from (the matching measures from here).
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    # Set by hand; `deployed` is read from the bookings.
    Column("status", Text, nullable=False, server_default="available"),
    Column("contact_person", Text),
    Column("contact_phone", Text),
    Column("managing_unit", Text),
    Column("address", Text),
    Column("district_code", Text),
    *registry_versioning(),
    CheckConstraint(f"team_type IN {TEAM_TYPES!r}", name="team_type"),
    CheckConstraint(f"status IN {SETTABLE_TEAM_STATUSES!r}", name="status"),
    CheckConstraint(
        f"cardinality(capabilities) > 0 AND capabilities <@ ARRAY{list(CAPABILITIES)!r}::text[]",
        name="capabilities",
    ),
    CheckConstraint("members >= 0", name="members"),
    *site_geometry("rescue_teams"),
    Index("ix_rescue_teams_capabilities", "capabilities", postgresql_using="gin"),
    Index("ix_rescue_teams_geog", text("(geom::geography)"), postgresql_using="gist"),
)

rescue_team_history = version_history("rescue_team_history", "rescue_team_id", "rescue_teams")

# The item catalogue: what depots stock, in which unit (configurable data, seeded by the migration).
supply_items = Table(
    "supply_items",
    metadata,
    Column("item", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("unit", Text, nullable=False),
)

supply_depots = Table(
    "supply_depots",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("geom", Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False),
    Column("area_m2", Float),
    # What it holds, {item: quantity} in the catalogue's units; reservations are supply_reservations.
    Column("stock", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("contact_person", Text),
    Column("contact_phone", Text),
    Column("managing_unit", Text),
    Column("address", Text),
    Column("district_code", Text),
    Column("status", Text, nullable=False, server_default="active"),
    *registry_versioning(),
    CheckConstraint(f"level IN {DEPOT_LEVELS!r}", name="level"),
    CheckConstraint(f"status IN {SITE_STATUSES!r}", name="status"),
    CheckConstraint("area_m2 IS NULL OR area_m2 >= 0", name="area"),
    CheckConstraint(
        "jsonb_typeof(stock) = 'object'"
        " AND NOT jsonb_path_exists(stock, '$.* ? (@.type() != \"number\" || @ < 0 || @ != @.floor())')",
        name="stock",
    ),
    *site_geometry("supply_depots"),
)

supply_depot_history = version_history("supply_depot_history", "supply_depot_id", "supply_depots")

# What a warning's orders need beyond the action, per hazard and target ('*': any): a team with a
# capability, or an item per target and per person, once the order's action reaches `min_action`.
warning_rule_needs = Table(
    "warning_rule_needs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("hazard_type", Text, nullable=False),
    Column("target_type", Text, nullable=False),
    Column("target_kind", Text, nullable=False),
    Column("min_action", Text, nullable=False),
    Column("capability", Text),
    Column("item", Text, ForeignKey("supply_items.item")),
    Column("per_target", Float, nullable=False, server_default=text("0")),
    Column("per_person", Float, nullable=False, server_default=text("0")),
    CheckConstraint(f"hazard_type = '*' OR hazard_type IN {HAZARD_TYPES!r}", name="hazard_type"),
    CheckConstraint(f"target_type = '*' OR target_type IN {TARGET_TYPES!r}", name="target_type"),
    CheckConstraint(f"min_action IN {ACTIONS[1:]!r}", name="min_action"),
    CheckConstraint(f"capability IS NULL OR capability IN {CAPABILITIES!r}", name="capability"),
    CheckConstraint("(capability IS NULL) <> (item IS NULL)", name="one_need"),
    CheckConstraint("per_target >= 0 AND per_person >= 0", name="amounts"),
)

# Bookings: a team for an order (one unreleased booking per team, enforced by the index).
work_order_teams = Table(
    "work_order_teams",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", BigInteger, ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False),
    Column("team_id", BigInteger, ForeignKey("rescue_teams.id"), nullable=False),
    Column("capability", Text, nullable=False),
    Column("distance_m", Float, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("released_at", DateTime(timezone=True)),
    Index("ix_work_order_teams_order", "order_id"),
    Index("ux_work_order_teams_busy", "team_id", unique=True, postgresql_where=text("released_at IS NULL")),
)

# Shelter places held for an evacuation order's people (several shelters when one has too few).
shelter_reservations = Table(
    "shelter_reservations",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", BigInteger, ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False),
    Column("shelter_id", BigInteger, ForeignKey("shelters.id"), nullable=False),
    Column("persons", Integer, nullable=False),
    # Of them, those already checked in at the shelter (counted in its occupancy from then on, so
    # no longer held apart: shelter_reserved() counts persons − checked_in).
    Column("checked_in", Integer, nullable=False, server_default=text("0")),
    Column("distance_m", Float, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("released_at", DateTime(timezone=True)),
    CheckConstraint("persons > 0", name="persons"),
    CheckConstraint("checked_in BETWEEN 0 AND persons", name="checked_in"),
    Index("ix_shelter_reservations_order", "order_id"),
    Index("ix_shelter_reservations_live", "shelter_id", postgresql_where=text("released_at IS NULL")),
)

# Supplies held for an order from a depot; `consumed` once the order is done (the stock is drawn).
supply_reservations = Table(
    "supply_reservations",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("order_id", BigInteger, ForeignKey("work_orders.id", ondelete="CASCADE"), nullable=False),
    Column("depot_id", BigInteger, ForeignKey("supply_depots.id"), nullable=False),
    Column("item", Text, ForeignKey("supply_items.item"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("distance_m", Float, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("released_at", DateTime(timezone=True)),
    Column("consumed", Integer, nullable=False, server_default=text("0")),
    CheckConstraint("quantity > 0 AND consumed >= 0 AND consumed <= quantity", name="quantity"),
    Index("ix_supply_reservations_order", "order_id"),
    Index("ix_supply_reservations_live", "depot_id", "item", postgresql_where=text("released_at IS NULL")),
)
