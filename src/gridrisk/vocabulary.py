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
# work_order_overdue: an unfinished order passed its due time (announced once, by the expiry job);
# shelter_status: a shelter's status changed (e.g. to `full` when its last place is taken).
WebhookKind = Literal[
    "warning",
    "work_order",
    "work_order_overdue",
    "cell_colour",
    "feature_changed",
    "layer_changed",
    "cell_workers",
    "shelter_status",
]
WEBHOOK_KINDS: tuple[str, ...] = get_args(WebhookKind)
DeliveryStatus = Literal["pending", "delivered", "failed", "disabled"]
DELIVERY_STATUSES: tuple[str, ...] = get_args(DeliveryStatus)


def sql_in(values: tuple[str, ...]) -> str:
    """A SQL list literal of VALUES for CHECK constraints: ('a', 'b')."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# What people read for each code, Chinese first (the web map, reports and images); English for the
# language switch. A code missing from a set's English names reads as itself with spaces.
LABELS_ZH: dict[str, dict[str, str]] = {
    "colour": {"red": "红色", "orange": "橙色", "yellow": "黄色", "blue": "蓝色"},
    "level": {c: f"{name}风险" for c, name in LEVEL_NAMES_ZH.items()},
    "source_status": {"active": "在管", "suspended": "停产停业", "closed": "已关闭"},
    "shelter_class": {"central": "中心避难场所", "fixed": "固定避难场所", "emergency": "紧急避难场所"},
    "shelter_status": {"standby": "待启用", "open": "已开放", "full": "已满员", "closed": "已关闭"},
    "hazard_kind": {
        "landslide": "滑坡",
        "collapse": "崩塌",
        "debris_flow": "泥石流",
        "ground_subsidence": "地面塌陷",
        "waterlogging": "易涝积水点",
        "dangerous_building": "危房",
        "other": "其他",
    },
    "hazard_status": {
        "identified": "已排查",
        "monitoring": "监测中",
        "remediating": "治理中",
        "remediated": "已治理",
        "closed": "已销号",
    },
    "hazard_type": {
        "rainstorm": "暴雨",
        "typhoon": "台风",
        "gale": "大风",
        "thunderstorm": "雷电",
        "heat": "高温",
        "cold_wave": "寒潮",
        "snow": "暴雪",
        "fog": "大雾",
        "hail": "冰雹",
        "flood": "洪水",
        "geological": "地质灾害",
        "earthquake": "地震",
        "other": "其他",
    },
    "action": {
        "none": "无需工单",
        "notify": "通知",
        "notify_patrol": "通知并巡查",
        "patrol_prepare_evacuation": "巡查并准备转移",
        "evacuate": "转移避险",
    },
    "order_status": {
        "open": "待接收",
        "acknowledged": "已接收",
        "in_progress": "处置中",
        "done": "已办结",
        "cancelled": "已撤销",
    },
    "target_type": {"risk_source": "风险源", "hazard_point": "隐患点", "vulnerable_site": "承灾体"},
    "vulnerable_kind": VULNERABLE_KIND_NAMES_ZH,
    "capability": CAPABILITY_NAMES_ZH,
    "team_type": {
        "fire_station": "国家综合性消防救援站",
        "fire_brigade": "政府专职消防队",
        "professional": "专业救援队伍",
        "social": "社会救援力量",
        "militia": "民兵应急分队",
    },
    "team_status": {"available": "待命", "deployed": "已调派", "off_duty": "休整", "closed": "已撤销"},
    "depot_level": {"city": "市级", "district": "区级", "street": "街镇级"},
}
LABELS_EN: dict[str, dict[str, str]] = {
    "level": {"red": "major", "orange": "high", "yellow": "moderate", "blue": "low"},
    "action": {
        "none": "no order",
        "notify_patrol": "notify and patrol",
        "patrol_prepare_evacuation": "patrol, prepare evacuation",
    },
    "hazard_kind": {"waterlogging": "waterlogging point"},
}
LABEL_CODES: dict[str, tuple[str, ...]] = {
    "colour": LEVELS,
    "level": LEVELS,
    "source_status": SOURCE_STATUSES,
    "shelter_class": SHELTER_CLASSES,
    "shelter_status": SHELTER_STATUSES,
    "hazard_kind": HAZARD_KINDS,
    "hazard_status": HAZARD_STATUSES,
    "hazard_type": HAZARD_TYPES,
    "action": ACTIONS,
    "order_status": ORDER_STATUSES,
    "target_type": TARGET_TYPES,
    "vulnerable_kind": VULNERABLE_KINDS,
    "capability": CAPABILITIES,
    "team_type": TEAM_TYPES,
    "team_status": TEAM_STATUSES,
    "depot_level": DEPOT_LEVELS,
}


def labels() -> dict[str, dict[str, dict[str, str]]]:
    """Every set's codes with their Chinese and English names: {set: {code: {"zh": …, "en": …}}}."""
    return {
        name: {
            code: {
                "zh": LABELS_ZH[name].get(code, code),
                "en": LABELS_EN.get(name, {}).get(code, code.replace("_", " ")),
            }
            for code in codes
        }
        for name, codes in LABEL_CODES.items()
    }
