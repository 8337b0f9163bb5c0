"""Demo shelters (应急避难场所) for the demo city, seeded, at Nanjing's published figures.

- 53 central and fixed shelters (8 central, 45 fixed) with 2.14 million m² of effective area in all:
  large parks, sports centres and squares, drawn as polygons where people live and spread apart
  (central ≥ 8 km, fixed ≥ 2.5 km from each other).
- 260 emergency sites (紧急避难场所: school yards, squares, street-corner parks) for 7 million people
  in all at 1 m² per person, as points, drawn by population over the comprehensive grid and at least
  600 m apart.

Capacities follow the configured per-person areas (`shelter_classes`). A smaller city (only some
districts loaded) gets counts and areas in proportion to its population. Statuses are mostly
standby, a few open (with people checked in) and a few closed for works. Every shelter is inserted
by one INSERT, and only while the registry is empty.
"""

from __future__ import annotations

import math
import time
import zlib
from typing import Any

import numpy as np
import orjson
import psycopg
import shapely
from shapely import affinity

from gridrisk.db.sql_files import sql
from gridrisk.demo.sources import (
    M_PER_DEG_LAT,
    M_PER_DEG_LON_EQ,
    load_comprehensive_cells,
    points_in_cells,
)
from gridrisk.services.layers import Progress

# SPEC.md "The domain": Nanjing's figures, and the population they are for.
CITY_POPULATION = 9_310_000
N_CENTRAL = 8
N_FIXED = 45
CENTRAL_FIXED_AREA_M2 = 2_140_000
N_EMERGENCY = 260
EMERGENCY_PERSONS = 7_000_000
# Central shelters take about 40% of the central+fixed area (a few very large parks).
CENTRAL_AREA_SHARE = 0.40
SPACING_M = {"central": 8000.0, "fixed": 2500.0, "emergency": 600.0}
STATUS_SHARES = {"emergency": {"open": 0.03, "closed": 0.03}, "fixed": {"open": 0.04, "closed": 0.02}}

# Neighbourhood names per district, for site names and addresses.
PLACES = {
    "320102": "玄武门 锁金村 孝陵卫 红山 梅园 新街口 后宰门 兰园 玄武湖 徐庄".split(),
    "320104": "夫子庙 中华门 双塘 红花 光华路 朝天宫 洪武路 月牙湖 瑞金路 大光路".split(),
    "320105": "莫愁湖 南苑 兴隆 沙洲 江心洲 双闸 奥体 河西 滨江 茶亭".split(),
    "320106": "宁海路 华侨路 湖南路 中央门 挹江门 江东 凤凰 热河南路 幕府山 宝塔桥".split(),
    "320111": "江浦 泰山 顶山 沿江 珠江 桥林 汤泉 星甸 永宁 老山".split(),
    "320113": "尧化 马群 迈皋桥 燕子矶 仙林 栖霞 八卦洲 龙潭 西岗 摄山".split(),
    "320114": "雨花 赛虹桥 西善桥 板桥 铁心桥 梅山 宁南 古雄 软件谷 安德门".split(),
    "320115": "东山 秣陵 汤山 淳化 禄口 江宁 谷里 湖熟 横溪 麒麟 百家湖 九龙湖".split(),
    "320116": "雄州 龙池 龙袍 横梁 马鞍 冶山 竹镇 程桥 金牛湖 八百".split(),
    "320117": "永阳 白马 东屏 洪蓝 石湫 晶桥 和凤 柘塘 天生桥 无想山".split(),
    "320118": "淳溪 古柏 阳江 砖墙 漆桥 东坝 桠溪 固城 慢城 老街".split(),
}
OTHER_PLACES = "城东 城西 城南 城北 新城 中心".split()
SITE_KINDS = {
    "central": ("体育中心", "中央公园", "森林公园", "市民广场", "生态公园"),
    "fixed": ("公园", "体育场", "中学", "文化广场", "绿地广场", "体育馆", "湿地公园"),
    "emergency": ("小学", "中学", "文化广场", "街心公园", "社区公园", "体育公园", "绿地", "广场"),
}
CODE_PART = {"central": "ZX", "fixed": "GD", "emergency": "JJ"}  # 中心, 固定, 紧急
FACILITIES = {
    "central": ("应急指挥", "应急停机坪", "医疗救护", "物资储备", "应急供水", "应急供电", "应急厕所",
                "应急广播", "消防设施", "洗浴设施", "垃圾收集", "应急排污", "应急标识"),
    "fixed": ("医疗救护", "物资储备", "应急供水", "应急供电", "应急厕所", "应急广播", "消防设施",
              "垃圾收集", "应急排污", "应急标识"),
    "emergency": ("应急供水", "应急厕所", "应急照明", "应急广播", "应急标识"),
}  # fmt: skip


def build_demo_shelters(
    conn: psycopg.Connection, *, seed: int = 42, actor: str = "demo", progress: Progress | None = None
) -> dict[str, Any]:
    """Register seeded demo shelters when there are none yet; skip (and say so) otherwise.

    Runs in the caller's transaction (a savepoint); the same seed and city give the same shelters.
    """
    started = time.perf_counter()
    report = progress or (lambda *_: None)
    with conn.transaction():
        # Two builds at once must not both see an empty registry: the second waits, then skips.
        conn.execute("LOCK TABLE shelters IN SHARE ROW EXCLUSIVE MODE")
        existing = conn.execute("SELECT count(*) FROM shelters").fetchone()[0]
        if existing:
            return {"skipped": True, "reason": f"the registry already holds {existing} shelter(s)"}
        report("generating shelters", 0, 1)
        records = generate_demo_shelters(conn, seed=seed)
        report("generating shelters", 1, 1)
        report("storing shelters", 0, 1)
        conn.execute(sql("shelter_demo_insert"), {**_columns(records), "actor": actor})
        report("storing shelters", 1, 1)
    rows = conn.execute(
        "SELECT class, count(*), sum(effective_area_m2), sum(capacity),"
        " count(*) FILTER (WHERE status = 'open')"
        " FROM shelters WHERE created_by = %s GROUP BY class ORDER BY class",
        (actor,),
    ).fetchall()
    return {
        "skipped": False,
        "shelters": sum(r[1] for r in rows),
        "by_class": {
            r[0]: {"shelters": r[1], "effective_area_m2": round(r[2]), "capacity": int(r[3]), "open": r[4]}
            for r in rows
        },
        "seconds": round(time.perf_counter() - started, 2),
    }


def generate_demo_shelters(conn: psycopg.Connection, *, seed: int = 42) -> list[dict[str, Any]]:
    """The demo shelters as row dicts; the same seed and city give the same rows."""
    cells = load_comprehensive_cells(conn)
    if not len(cells["codes"]):
        raise ValueError("the comprehensive grid is empty; build the demo city first (gridrisk demo build)")
    classes = {
        r[0]: float(r[1]) for r in conn.execute("SELECT class, m2_per_person FROM shelter_classes").fetchall()
    }
    missing = {"central", "fixed", "emergency"} - classes.keys()
    if missing:
        raise ValueError(f"shelter_classes lacks {sorted(missing)}; run `gridrisk db upgrade`")
    names = dict(conn.execute("SELECT code, name FROM cells WHERE layer = 'district'").fetchall())
    city = shapely.union_all(cells["geoms"])
    shapely.prepare(city)
    # A partial city gets its population's share of the provision.
    share = min(1.0, float(cells["population"].sum()) / CITY_POPULATION)
    rng = np.random.default_rng([seed, zlib.crc32(b"shelters")])
    n_central = max(1, round(N_CENTRAL * share))
    n_fixed = max(1, round(N_FIXED * share))
    n_emergency = max(1, round(N_EMERGENCY * share))
    area = CENTRAL_FIXED_AREA_M2 * share

    taken = np.empty((0, 2))
    records: list[dict[str, Any]] = []
    central_areas = _sized(n_central, area * CENTRAL_AREA_SHARE, sigma=0.35, floor=30_000, rng=rng)
    fixed_areas = _sized(n_fixed, area * (1 - CENTRAL_AREA_SHARE), sigma=0.5, floor=6_000, rng=rng)
    emergency_areas = _sized(n_emergency, EMERGENCY_PERSONS * share * classes["emergency"], 0.6, 2_000, rng)
    for cls, areas in (("central", central_areas), ("fixed", fixed_areas), ("emergency", emergency_areas)):
        # Spacing applies within a class, and central and fixed sites keep apart from each other.
        if cls == "emergency":
            taken = np.empty((0, 2))
        idx, xy = _spaced_cells(cells, len(areas), SPACING_M[cls], taken, rng)
        taken = np.vstack([taken, xy])
        lon, lat = points_in_cells(cells["geoms"], idx, rng)
        if cls == "emergency":
            lon, lat = _near_middle(cells, idx, lon, lat, rng)
        for i, cell in enumerate(idx):
            records.append(_site(cls, areas[i], lon[i], lat[i], cells["district"][cell], names, city, rng))
    _statuses(records, classes, rng)
    _assign_codes_and_names(records)
    return records


def _sized(n: int, total: float, sigma: float, floor: float, rng: np.random.Generator) -> np.ndarray:
    """N lognormal sizes of at least FLOOR, summing to TOTAL (whole m²)."""
    raw = rng.lognormal(0.0, sigma, n)
    sizes = np.maximum(floor, raw / raw.sum() * total)
    # Flooring adds area: take it back from the sites above the floor, keeping their proportions.
    for _ in range(10):
        over = sizes > floor
        excess = sizes.sum() - total
        if abs(excess) < 1 or not over.any():
            break
        sizes[over] = np.maximum(floor, sizes[over] - excess * sizes[over] / sizes[over].sum())
    sizes = np.round(sizes)
    sizes[np.argmax(sizes)] += round(total) - sizes.sum()  # exact total
    return sizes


def _spaced_cells(
    cells: dict, n: int, spacing: float, taken: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """N cells drawn by population whose centroids lie SPACING metres from each other and from TAKEN.

    The spacing shrinks when a small city cannot hold N sites that far apart.
    """
    lat0 = float(np.mean(cells["cy"]))
    x = cells["cx"] * M_PER_DEG_LON_EQ * math.cos(math.radians(lat0))
    y = cells["cy"] * M_PER_DEG_LAT
    weight = cells["population"] + 1.0
    chosen: list[int] = []
    points = [tuple(p) for p in taken]
    while len(chosen) < n:
        for c in rng.choice(len(weight), size=4000, p=weight / weight.sum()):
            if len(chosen) == n:
                break
            if all((x[c] - px) ** 2 + (y[c] - py) ** 2 >= spacing**2 for px, py in points):
                chosen.append(int(c))
                points.append((x[c], y[c]))
        spacing *= 0.8
    idx = np.array(chosen, dtype=int)
    return idx, np.column_stack([x[idx], y[idx]])


def _near_middle(
    cells: dict, idx: np.ndarray, lon: np.ndarray, lat: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Emergency sites serve the heart of their neighbourhood: within 300 m of the cell's centroid.

    (A village square, not a field at the cell's edge.) Where that point falls outside the cell,
    the uniform point drawn inside it stays.
    """
    r = 300.0 * np.sqrt(rng.random(len(idx)))
    a = rng.uniform(0, 2 * math.pi, len(idx))
    x = cells["cx"][idx] + r * np.cos(a) / (M_PER_DEG_LON_EQ * np.cos(np.radians(cells["cy"][idx])))
    y = cells["cy"][idx] + r * np.sin(a) / M_PER_DEG_LAT
    inside = shapely.contains_xy(cells["geoms"][idx], x, y)
    return np.where(inside, x, lon), np.where(inside, y, lat)


def _site(
    cls: str,
    effective: float,
    lon: float,
    lat: float,
    district: str,
    names: dict,
    city: shapely.Geometry,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """One shelter: polygons for central and fixed sites (sized to their total area), points otherwise."""
    total = round(effective * rng.uniform(1.2, 1.8))
    geom: shapely.Geometry = shapely.Point(lon, lat)
    if cls != "emergency":
        kx = 1 / (M_PER_DEG_LON_EQ * math.cos(math.radians(lat)))
        aspect = rng.uniform(1.0, 2.2)
        w, h = math.sqrt(total * aspect), math.sqrt(total / aspect)
        rect = affinity.rotate(shapely.box(-w / 2, -h / 2, w / 2, h / 2), float(rng.uniform(0, 180)), (0, 0))
        poly = affinity.translate(affinity.scale(rect, kx, 1 / M_PER_DEG_LAT, origin=(0, 0)), lon, lat)
        # A site drawn across the city boundary is kept as its location point.
        geom = poly if city.covers(poly) else geom
    places = PLACES.get(district, OTHER_PLACES)
    place = places[int(rng.integers(len(places)))]
    kind = SITE_KINDS[cls][int(rng.integers(len(SITE_KINDS[cls])))]
    dname = names.get(district, "")
    road = place if place.endswith(("路", "街")) else f"{place}路"
    k = int(rng.integers(2, 6)) if cls == "emergency" else int(rng.integers(6, len(FACILITIES[cls]) + 1))
    picked = set(rng.choice(FACILITIES[cls], size=k, replace=False).tolist())
    facilities = list(FACILITIES[cls]) if cls == "central" else [f for f in FACILITIES[cls] if f in picked]
    unit = (
        f"{place}{kind}"
        if kind in ("小学", "中学")
        else f"{dname}应急管理局"
        if cls != "emergency"
        else f"{dname}{place}街道办事处"
    )
    return {
        "class": cls,
        "district": district,
        "place": place,
        "kind": kind,
        "geom": geom,
        "total": float(total),
        "effective": float(effective),
        "facilities": facilities,
        "address": f"南京市{dname}{road}{int(rng.integers(1, 300))}号",
        "unit": unit,
    }


def _statuses(records: list[dict], classes: dict[str, float], rng: np.random.Generator) -> None:
    """Capacities from the class's m² per person; mostly standby, a few open (with people) or closed."""
    for r in records:
        r["capacity"] = math.floor(r["effective"] / classes[r["class"]])
        shares = STATUS_SHARES.get(r["class"], {})
        u = rng.random()
        if u < shares.get("open", 0):
            r["status"] = "open"
            r["occupancy"] = int(r["capacity"] * rng.uniform(0.02, 0.35))
        elif u < shares.get("open", 0) + shares.get("closed", 0):
            r["status"], r["occupancy"] = "closed", 0
        else:
            r["status"], r["occupancy"] = "standby", 0


def _assign_codes_and_names(records: list[dict]) -> None:
    """Codes BN-<district>-<ZX|GD|JJ>-<seq>; names unique (a repeat gets a number)."""
    seq: dict[tuple[str, str], int] = {}
    seen: dict[str, int] = {}
    for r in records:
        key = (r["district"], CODE_PART[r["class"]])
        seq[key] = seq.get(key, 0) + 1
        r["code"] = f"BN-{key[0]}-{key[1]}-{seq[key]:03d}"
        site = f"{r['place']}{r['kind']}"
        seen[site] = seen.get(site, 0) + 1
        n = seen[site]
        if 1 < n <= 10:
            site = f"{r['place']}第{'一二三四五六七八九十'[n - 1]}{r['kind']}"
        elif n > 10:
            site = f"{site}（{n}）"
        r["name"] = f"{site}应急避难场所"


def _columns(records: list[dict]) -> dict[str, list]:
    """Parallel arrays for the one INSERT … SELECT FROM unnest(…) statement."""
    return {
        "code": [r["code"] for r in records],
        "name": [r["name"] for r in records],
        "class": [r["class"] for r in records],
        "wkb": [shapely.to_wkb(r["geom"]) for r in records],
        "total": [r["total"] for r in records],
        "effective": [r["effective"] for r in records],
        "capacity": [r["capacity"] for r in records],
        "occupancy": [r["occupancy"] for r in records],
        "status": [r["status"] for r in records],
        "facilities": [orjson.dumps(r["facilities"]).decode() for r in records],
        "address": [r["address"] for r in records],
        "district": [r["district"] for r in records],
        "unit": [r["unit"] for r in records],
    }
