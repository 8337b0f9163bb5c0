"""Demo vulnerable sites, rescue teams and supply depots for the demo city, seeded, at Nanjing's figures.

- About 3,000 vulnerable sites (承灾体): schools, kindergartens, hospitals, nursing homes, underground
  spaces and garages, underpasses, tunnels, construction sites, low-lying blocks and crowded venues,
  drawn where people live, with the people there and how many need help to move.
- Rescue teams: 30 national fire and rescue stations, 42 government full-time fire brigades, and
  professional teams in 32 sectors with 12,000 people in all.
- Supply depots: the city depot (3,780 m², all 21 categories of the catalogue), one per district,
  and street depots.
A smaller city (only some districts) gets counts in proportion to its population. Each registry is
filled by one INSERT, and only while it is empty.
"""

from __future__ import annotations

import time
import zlib
from typing import Any

import numpy as np
import orjson
import psycopg
import shapely

from gridrisk.db.sql_files import sql
from gridrisk.demo.shelters import CITY_POPULATION, OTHER_PLACES, PLACES
from gridrisk.demo.sources import load_comprehensive_cells, points_in_cells
from gridrisk.services.layers import Progress

SURNAMES = list("王李张刘陈杨黄赵周吴")
N_SITES = 3000
# kind: (share, name suffixes, persons low/high, share needing help to move)
SITE_KINDS: dict[str, tuple[float, tuple[str, ...], tuple[int, int], float]] = {
    "school": (0.22, ("小学", "中学", "实验学校"), (600, 2500), 0.0),
    "kindergarten": (0.18, ("幼儿园",), (90, 400), 1.0),
    "hospital": (0.04, ("人民医院", "社区卫生服务中心", "中医院"), (300, 1500), 0.3),
    "nursing_home": (0.08, ("养老院", "颐养中心", "敬老院"), (50, 300), 0.7),
    "underground_space": (0.06, ("地下商业街", "人防工程", "地铁站"), (100, 800), 0.0),
    "underground_garage": (0.12, ("地下车库",), (20, 200), 0.0),
    "underpass": (0.03, ("下穿通道", "下立交"), (5, 60), 0.0),
    "tunnel": (0.01, ("隧道",), (10, 120), 0.0),
    "construction_site": (0.09, ("项目工地", "在建工程"), (50, 600), 0.0),
    "low_lying_block": (0.12, ("低洼片区", "老旧小区"), (200, 3000), 0.1),
    "crowded_venue": (0.05, ("商场", "体育馆", "客运站"), (500, 5000), 0.0),
}
CODE_PART = {
    "school": "XX",
    "kindergarten": "YE",
    "hospital": "YY",
    "nursing_home": "YL",
    "underground_space": "DX",
    "underground_garage": "CK",
    "underpass": "XC",
    "tunnel": "SD",
    "construction_site": "GD",
    "low_lying_block": "DW",
    "crowded_venue": "RM",
}

N_FIRE_STATIONS = 30
N_FIRE_BRIGADES = 42
PROFESSIONAL_MEMBERS = 12_000
# Nanjing's 32 professional rescue sectors: (name, capabilities).
SECTORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("防汛抗旱", ("pumping", "water_rescue")),
    ("危险化学品", ("hazmat",)),
    ("森林消防", ("firefighting", "tree_clearing")),
    ("气象灾害", ("tree_clearing", "pumping")),
    ("地质灾害", ("search_rescue", "structural_collapse")),
    ("电力", ("power_restoration",)),
    ("供水", ("water_repair", "pumping")),
    ("燃气", ("gas_repair",)),
    ("轨道交通", ("search_rescue", "evacuation_transport")),
    ("医疗卫生", ("medical",)),
    ("通信保障", ("communications",)),
    ("交通运输", ("evacuation_transport",)),
    ("建筑施工", ("structural_collapse",)),
    ("矿山", ("search_rescue", "hazmat")),
    ("水上搜救", ("water_rescue",)),
    ("城市排水", ("pumping",)),
    ("市政设施", ("structural_collapse", "tree_clearing")),
    ("园林绿化", ("tree_clearing",)),
    ("特种设备", ("hazmat", "structural_collapse")),
    ("环境应急", ("hazmat",)),
    ("石油化工", ("hazmat", "firefighting")),
    ("港口码头", ("water_rescue", "hazmat")),
    ("民航", ("firefighting", "medical")),
    ("铁路", ("search_rescue", "evacuation_transport")),
    ("公路抢通", ("structural_collapse", "evacuation_transport")),
    ("桥梁隧道", ("structural_collapse", "pumping")),
    ("人防", ("search_rescue", "communications")),
    ("红十字", ("medical", "evacuation_transport")),
    ("志愿救援", ("search_rescue", "water_rescue")),
    ("卫生防疫", ("medical",)),
    ("粮食物资", ("evacuation_transport",)),
    ("社区应急", ("evacuation_transport", "medical")),
)
TEAMS_PER_SECTOR = 3
FIRE_CAPABILITIES = ("firefighting", "search_rescue", "water_rescue", "structural_collapse", "hazmat")
BRIGADE_CAPABILITIES = ("firefighting", "water_rescue", "pumping")

CITY_DEPOT_M2 = 3780
N_STREET_DEPOTS = 60
# item: (city depot, district depot, street depot) quantities.
STOCK: dict[str, tuple[int, int, int]] = {
    "tents": (6000, 800, 60),
    "quilts": (30000, 4000, 300),
    "folding_beds": (8000, 1000, 80),
    "life_jackets": (5000, 600, 50),
    "pumps": (120, 20, 2),
    "sandbags": (200000, 30000, 3000),
    "generators": (80, 12, 1),
    "drinking_water": (20000, 3000, 200),
    "instant_food": (20000, 3000, 200),
    "raincoats": (10000, 1500, 100),
    "rubber_boots": (6000, 800, 60),
    "flashlights": (8000, 1000, 100),
    "lifebuoys": (1500, 200, 20),
    "inflatable_boats": (60, 8, 0),
    "tarpaulins": (10000, 1500, 100),
    "blankets": (15000, 2000, 150),
    "cotton_coats": (8000, 1000, 60),
    "medical_kits": (5000, 600, 50),
    "emergency_lights": (3000, 400, 30),
    "chainsaws": (200, 30, 2),
    "mobile_toilets": (300, 40, 2),
}


def build_demo_response_resources(
    conn: psycopg.Connection, *, seed: int = 42, actor: str = "demo", progress: Progress | None = None
) -> dict[str, Any]:
    """Register demo vulnerable sites, rescue teams and supply depots, each while its registry is empty."""
    started = time.perf_counter()
    report = progress or (lambda *_: None)
    cells = load_comprehensive_cells(conn)
    if not len(cells["codes"]):
        raise ValueError("the comprehensive grid is empty; build the demo city first (gridrisk demo build)")
    share = min(1.0, float(cells["population"].sum()) / CITY_POPULATION)
    names = dict(conn.execute("SELECT code, name FROM cells WHERE layer = 'district'").fetchall())
    out: dict[str, Any] = {"skipped": True}
    for table, make, statement in (
        ("vulnerable_sites", _sites, "vulnerable_site_demo_insert"),
        ("rescue_teams", _teams, "rescue_team_demo_insert"),
        ("supply_depots", _depots, "supply_depot_demo_insert"),
    ):
        with conn.transaction():
            # Two builds at once must not both see an empty registry: the second waits, then skips.
            conn.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]:
                out[table] = 0
                continue
            report(f"generating {table}", 0, 1)
            rng = np.random.default_rng([seed, zlib.crc32(table.encode())])
            rows = make(cells, names, share, rng)
            conn.execute(sql(statement), {**_columns(rows), "actor": actor})
            report(f"generating {table}", 1, 1)
            out[table] = len(rows)
            out["skipped"] = False
    if out["skipped"]:
        out["reason"] = "the registries already hold sites, teams and depots"
    out["seconds"] = round(time.perf_counter() - started, 2)
    return out


def _columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


def _places(district: str, names: dict[str, str]) -> list[str]:
    return PLACES.get(district) or [names.get(district, "")[:2] + p for p in OTHER_PLACES]


def _located(cells: dict, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """N points drawn by population over the comprehensive cells: (cell index, lon, lat)."""
    weight = cells["population"] + 1.0
    idx = rng.choice(len(weight), size=n, p=weight / weight.sum())
    lon, lat = points_in_cells(cells["geoms"], idx, rng)
    return idx, lon, lat


def _wkb(lon: float, lat: float) -> bytes:
    return shapely.to_wkb(shapely.Point(round(float(lon), 7), round(float(lat), 7)))


def _sites(cells: dict, names: dict[str, str], share: float, rng: np.random.Generator) -> list[dict]:
    n = max(len(SITE_KINDS), round(N_SITES * share))
    kinds = list(SITE_KINDS)
    shares = np.array([SITE_KINDS[k][0] for k in kinds])
    drawn = rng.choice(len(kinds), size=n, p=shares / shares.sum())
    drawn[: len(kinds)] = np.arange(len(kinds))  # every kind at least once, even in a tiny city
    idx, lon, lat = _located(cells, n, rng)
    rows, serial = [], {}
    for i in range(n):
        kind = kinds[drawn[i]]
        _, suffixes, (low, high), assisted = SITE_KINDS[kind]
        district = cells["district"][idx[i]]
        serial[kind] = serial.get(kind, 0) + 1
        place = rng.choice(_places(district, names))
        persons = int(rng.integers(low, high + 1))
        rows.append(
            {
                "code": f"CZT-{district or '000000'}-{CODE_PART[kind]}-{serial[kind]:04d}",
                "name": f"{place}{rng.choice(suffixes)}",
                "kind": kind,
                "wkb": _wkb(lon[i], lat[i]),
                "persons": persons,
                "assisted": int(round(persons * assisted)),
                "contact": f"{rng.choice(SURNAMES)}{rng.choice(['主任', '校长', '经理', '站长'])}",
                "phone": f"1{rng.integers(30, 90)}{rng.integers(10_000_000, 99_999_999)}",
                "unit": names.get(district, "")
                + ("教育局" if kind in ("school", "kindergarten") else "应急管理局"),
                "address": f"南京市{names.get(district, '')}{place}",
                "district": district or None,
            }
        )
    return rows


def _teams(cells: dict, names: dict[str, str], share: float, rng: np.random.Generator) -> list[dict]:
    plan: list[tuple[str, str, tuple[str, ...], int, str]] = []
    for i in range(max(1, round(N_FIRE_STATIONS * share))):
        plan.append(
            ("fire_station", "消防救援", FIRE_CAPABILITIES, int(rng.integers(30, 60)), f"XF-{i + 1:02d}")
        )
    for i in range(max(1, round(N_FIRE_BRIGADES * share))):
        plan.append(
            ("fire_brigade", "消防救援", BRIGADE_CAPABILITIES, int(rng.integers(10, 25)), f"ZZ-{i + 1:02d}")
        )
    per_team = PROFESSIONAL_MEMBERS * share / (len(SECTORS) * TEAMS_PER_SECTOR)
    for s, (sector, capabilities) in enumerate(SECTORS):
        for k in range(TEAMS_PER_SECTOR if share > 0.3 else 1):
            members = max(5, int(rng.normal(per_team, per_team * 0.3)))
            plan.append(("professional", sector, capabilities, members, f"ZY-{s + 1:02d}-{k + 1}"))
    idx, lon, lat = _located(cells, len(plan), rng)
    rows = []
    for i, (team_type, sector, capabilities, members, code) in enumerate(plan):
        district = cells["district"][idx[i]]
        place = rng.choice(_places(district, names))
        label = {"fire_station": "消防救援站", "fire_brigade": "专职消防队"}.get(team_type, f"{sector}救援队")
        rows.append(
            {
                "code": f"JYD-{code}",
                "name": f"{place}{label}",
                "team_type": team_type,
                "sector": sector,
                "capabilities": ",".join(capabilities),
                "members": members,
                "equipment": orjson.dumps(_equipment(capabilities)).decode(),
                "wkb": _wkb(lon[i], lat[i]),
                "contact": f"{rng.choice(SURNAMES)}队长",
                "phone": f"1{rng.integers(30, 90)}{rng.integers(10_000_000, 99_999_999)}",
                "unit": "南京市消防救援支队" if team_type != "professional" else f"南京市{sector}应急指挥部",
                "district": district or None,
            }
        )
    return rows


def _equipment(capabilities: tuple[str, ...]) -> list[str]:
    kit = {
        "water_rescue": ["冲锋舟", "救生衣"],
        "pumping": ["排涝泵车", "移动泵站"],
        "hazmat": ["防化服", "侦检仪"],
        "structural_collapse": ["破拆工具组", "生命探测仪"],
        "medical": ["救护车", "急救箱"],
        "power_restoration": ["应急发电车"],
        "firefighting": ["消防车"],
        "search_rescue": ["搜救犬", "无人机"],
        "evacuation_transport": ["大客车"],
        "gas_repair": ["燃气抢修车"],
        "water_repair": ["供水抢修车"],
        "tree_clearing": ["油锯", "吊车"],
        "communications": ["卫星通信车"],
    }
    return list(dict.fromkeys(e for c in capabilities for e in kit.get(c, [])))


def _depots(cells: dict, names: dict[str, str], share: float, rng: np.random.Generator) -> list[dict]:
    districts = sorted({d for d in cells["district"] if d})
    n_street = max(1, round(N_STREET_DEPOTS * share))
    levels = ["city"] + ["district"] * len(districts) + ["street"] * n_street
    idx, lon, lat = _located(cells, len(levels), rng)
    for k, d in enumerate(districts):  # one district depot in each district
        inside = np.flatnonzero(cells["district"] == d)
        idx[k + 1] = rng.choice(inside)
        lo, la = points_in_cells(cells["geoms"], idx[k + 1 : k + 2], rng)
        lon[k + 1], lat[k + 1] = lo[0], la[0]
    rows = []
    for i, level in enumerate(levels):
        district = cells["district"][idx[i]]
        column = ("city", "district", "street").index(level)
        scale = 1.0 if level == "street" else max(share, 0.1)
        stock = {item: int(q[column] * scale) for item, q in STOCK.items() if int(q[column] * scale) > 0}
        place = rng.choice(_places(district, names))
        name = {
            "city": "南京市救灾物资储备库",
            "district": f"{names.get(district, '')}救灾物资储备库",
            "street": f"{place}街道应急物资储备点",
        }[level]
        rows.append(
            {
                "code": f"WZK-{level[0].upper()}-{i + 1:03d}",
                "name": name,
                "level": level,
                "wkb": _wkb(lon[i], lat[i]),
                "area": float(CITY_DEPOT_M2 if level == "city" else (800 if level == "district" else 120)),
                "stock": orjson.dumps(stock).decode(),
                "contact": f"{rng.choice(SURNAMES)}主任",
                "phone": f"1{rng.integers(30, 90)}{rng.integers(10_000_000, 99_999_999)}",
                "unit": "南京市应急管理局" if level == "city" else f"{names.get(district, '')}应急管理局",
                "district": district or None,
            }
        )
    return rows
