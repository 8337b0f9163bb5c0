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

# Vulnerable sites (承灾体 / 重点易受灾对象): where people or structures are exposed to a hazard.
VulnerableKind = Literal[
    "school",
    "kindergarten",
    "hospital",
    "nursing_home",
    "underground_space",
    "underground_garage",
    "underpass",
    "tunnel",
    "construction_site",
    "low_lying_block",
    "crowded_venue",
    "other",
]
VULNERABLE_KINDS: tuple[str, ...] = get_args(VulnerableKind)
VULNERABLE_KIND_NAMES_ZH: dict[str, str] = {
    "school": "中小学校",
    "kindergarten": "幼儿园",
    "hospital": "医院",
    "nursing_home": "养老机构",
    "underground_space": "地下空间",
    "underground_garage": "地下车库",
    "underpass": "下穿通道",
    "tunnel": "隧道",
    "construction_site": "在建工地",
    "low_lying_block": "低洼居民区",
    "crowded_venue": "人员密集场所",
    "other": "其他",
}
SiteStatus = Literal["active", "closed"]
SITE_STATUSES: tuple[str, ...] = get_args(SiteStatus)

# Rescue teams (救援队伍) and what they can do.
Capability = Literal[
    "water_rescue",
    "pumping",
    "hazmat",
    "structural_collapse",
    "medical",
    "power_restoration",
    "firefighting",
    "search_rescue",
    "evacuation_transport",
    "gas_repair",
    "water_repair",
    "tree_clearing",
    "communications",
]
CAPABILITIES: tuple[str, ...] = get_args(Capability)
CAPABILITY_NAMES_ZH: dict[str, str] = {
    "water_rescue": "水域救援",
    "pumping": "排涝抽水",
    "hazmat": "危化品处置",
    "structural_collapse": "建筑坍塌救援",
    "medical": "医疗救护",
    "power_restoration": "电力抢修",
    "firefighting": "灭火",
    "search_rescue": "搜索救援",
    "evacuation_transport": "转移运输",
    "gas_repair": "燃气抢修",
    "water_repair": "供水抢修",
    "tree_clearing": "树木清障",
    "communications": "通信保障",
}
TeamType = Literal["fire_station", "fire_brigade", "professional", "social", "militia"]
TEAM_TYPES: tuple[str, ...] = get_args(TeamType)
TeamStatus = Literal["available", "deployed", "off_duty", "closed"]
TEAM_STATUSES: tuple[str, ...] = get_args(TeamStatus)
# Set by hand; `deployed` follows the work orders a team is booked for.
SettableTeamStatus = Literal["available", "off_duty", "closed"]

# Supply depots (物资储备库).
DepotLevel = Literal["city", "district", "street"]
DEPOT_LEVELS: tuple[str, ...] = get_args(DepotLevel)

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
TargetType = Literal["risk_source", "hazard_point", "vulnerable_site"]
TARGET_TYPES: tuple[str, ...] = get_args(TargetType)
# Ordered from weakest to strongest; `none` means "no order at this level" in a rule.
Action = Literal["none", "notify", "notify_patrol", "patrol_prepare_evacuation", "evacuate"]
ACTIONS: tuple[str, ...] = get_args(Action)
ORDER_ACTIONS = ACTIONS[1:]
OrderStatus = Literal["open", "acknowledged", "in_progress", "done", "cancelled"]
ORDER_STATUSES: tuple[str, ...] = get_args(OrderStatus)
ORDER_ACTIVE = ("open", "acknowledged", "in_progress")
# Why an order was cancelled: only `manual` cancellations survive a re-post of the warning;
# `expired`: its warning's valid-until passed while it was still open.
CANCEL_CAUSES = ("not_targeted", "warning_cancelled", "manual", "expired")


# What a webhook endpoint can subscribe to: the outbox's event kinds (events/outbox.py).
WebhookKind = Literal[
    "warning", "work_order", "cell_colour", "feature_changed", "layer_changed", "cell_workers"
]
WEBHOOK_KINDS: tuple[str, ...] = get_args(WebhookKind)
DeliveryStatus = Literal["pending", "delivered", "failed", "disabled"]
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


def sql_in(values: tuple[str, ...]) -> str:
    """A SQL list literal of VALUES for CHECK constraints: ('a', 'b')."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"
