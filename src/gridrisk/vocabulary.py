"""The one vocabulary: colours, statuses, kinds and categories that models, tables and SQL all read.

Each set is written once as a `Literal` (for pydantic and OpenAPI) and exposed as a tuple (for CHECK
constraints, SQL parameters and loops). Order matters where it says so.
"""

from __future__ import annotations

from typing import Literal, get_args

# The four-colour map (安全风险四色), strongest first: red 重大, orange 较大, yellow 一般, blue 低.
Colour = Literal["red", "orange", "yellow", "blue"]
LEVELS: tuple[str, ...] = get_args(Colour)
# The same levels weakest first, as warnings escalate (blue → red).
LEVELS_ASCENDING: tuple[str, ...] = tuple(reversed(LEVELS))
LEVEL_RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS_ASCENDING)}
LEVEL_NAMES_ZH: dict[str, str] = {"red": "重大", "orange": "较大", "yellow": "一般", "blue": "低"}

# Keys and roles.
Role = Literal["admin", "operator", "worker", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)
LAYER_KINDS = ("grid", "admin")

# Risk sources (风险源).
Method = Literal["LEC", "LS", "direct"]
METHODS: tuple[str, ...] = get_args(Method)
SourceStatus = Literal["active", "suspended", "closed"]
SOURCE_STATUSES: tuple[str, ...] = get_args(SourceStatus)
# SPEC.md: the value sets of the LEC method (D = L × E × C).
LEC_L = (10, 6, 3, 1, 0.5, 0.2, 0.1)
LEC_E = (10, 6, 3, 2, 1, 0.5)
LEC_C = (100, 40, 15, 7, 3, 1)

# Shelters (应急避难场所).
ShelterClass = Literal["central", "fixed", "emergency"]
SHELTER_CLASSES: tuple[str, ...] = get_args(ShelterClass)
ShelterStatus = Literal["standby", "open", "full", "closed"]
SHELTER_STATUSES: tuple[str, ...] = get_args(ShelterStatus)
# `full` is not set by hand: it follows occupancy (it is `open` with no free place).
SettableShelterStatus = Literal["standby", "open", "closed"]
# Statuses in which people may be checked in or out.
RECEIVING = ("open", "full")

# Hazard points (隐患点).
HazardKind = Literal[
    "landslide", "collapse", "debris_flow", "ground_subsidence", "waterlogging", "dangerous_building", "other"
]
HAZARD_KINDS: tuple[str, ...] = get_args(HazardKind)
HazardStatus = Literal["identified", "monitoring", "remediating", "remediated", "closed"]
HAZARD_STATUSES: tuple[str, ...] = get_args(HazardStatus)
# Statuses in which a point still counts on the four-colour map (the view cell_risk_items).
HAZARD_ON_MAP = ("identified", "monitoring", "remediating")

# What a file's lon/lat may be in: WGS 84 (GPS), or the offset systems of Chinese web maps, GCJ-02
# (Amap, Tencent) and BD-09 (Baidu), converted to WGS 84 on import (geometry/gcj02.py).
CoordinateSystem = Literal["WGS84", "GCJ-02", "BD-09"]
COORDINATE_SYSTEMS: tuple[str, ...] = get_args(CoordinateSystem)

# Targeted warnings (靶向预警) and work orders (响应工单).
HazardType = Literal[
    "rainstorm",
    "typhoon",
    "gale",
    "thunderstorm",
    "heat",
    "cold_wave",
    "snow",
    "fog",
    "hail",
    "flood",
    "geological",
    "earthquake",
    "other",
]
HAZARD_TYPES: tuple[str, ...] = get_args(HazardType)
# Stored statuses; `expired` is derived on read from valid_until.
WARNING_STATUSES = ("active", "cancelled")
WarningStatus = Literal["active", "cancelled", "expired"]
TargetType = Literal["risk_source", "hazard_point"]
TARGET_TYPES: tuple[str, ...] = get_args(TargetType)
# Ordered from weakest to strongest; `none` means "no order at this level" in a rule.
Action = Literal["none", "notify", "notify_patrol", "patrol_prepare_evacuation", "evacuate"]
ACTIONS: tuple[str, ...] = get_args(Action)
ORDER_ACTIONS = ACTIONS[1:]
OrderStatus = Literal["open", "acknowledged", "in_progress", "done", "cancelled"]
ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)
ORDER_ACTIVE = ("open", "acknowledged", "in_progress")
# Why an order was cancelled: only `manual` cancellations survive a re-post of the warning.
CANCEL_CAUSES = ("not_targeted", "warning_cancelled", "manual")


def sql_in(values: tuple[str, ...]) -> str:
    """A SQL list literal of VALUES for CHECK constraints: ('a', 'b')."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"
