"""Demo hazard points (隐患点) for the demo city: about 850, seeded, where Nanjing's hazards really lie.

- Dangerous buildings (危房, 405 as in Nanjing's register): old housing, drawn over the comprehensive
  grid by population and nearness to the walled old city, mostly in 秦淮, 鼓楼, 玄武 and 建邺.
- Geological hazard points (landslide, collapse, debris flow, ground subsidence; about 300): around
  the hills — 老山, 紫金山, 幕府山, 栖霞山, 汤山, 牛首山, 方山, 青龙山, 横山, 无想山, 东庐山,
  游子山 — as Gaussian bumps; levels follow the national 险情 grading by people and property.
- Waterlogging points (易积淹水点, about 150): along low-lying urban roads and underpasses.

A smaller city (only some districts loaded) keeps the clusters, roads and district shares that fall
inside it. Every point is inserted by one INSERT, so the table's triggers assign the cells and
colour the map exactly as for API writes.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import orjson
import psycopg
import shapely
from shapely import affinity

from gridrisk.db.sql_files import sql
from gridrisk.demo.hazard_places import (
    BUILDING_TYPES,
    FLOOD_SPOTS,
    GEO_CN,
    GIVEN,
    HILL_PLACES,
    NOTES,
    ROADS,
    STREETS,
    SURNAMES,
)
from gridrisk.demo.sources import (
    M_PER_DEG_LAT,
    M_PER_DEG_LON_EQ,
    load_comprehensive_cells,
    points_in_cells,
)
from gridrisk.services.layers import Progress

N_DANGEROUS_BUILDINGS = 405
N_GEOLOGICAL = 300
N_WATERLOGGING = 150

# Where the 危房 are: shares by district (old city first); districts not loaded drop their share.
BUILDING_DISTRICTS = {
    "320104": 0.30,
    "320106": 0.25,
    "320102": 0.17,
    "320105": 0.10,
    "320114": 0.05,
    "320113": 0.04,
    "320111": 0.03,
    "320116": 0.03,
    "320115": 0.02,
    "320117": 0.005,
    "320118": 0.005,
}
OLD_CITY = (118.785, 32.040)  # 新街口, the middle of the Ming walled city
OLD_CITY_SIGMA_M = 4000.0

# Per kind: level shares (blue takes the rest) and status shares (identified takes the rest).
LEVEL_SHARES = {
    "dangerous_building": {"red": 0.02, "orange": 0.10, "yellow": 0.40},
    "geological": {"red": 0.01, "orange": 0.05, "yellow": 0.30},
    "waterlogging": {"red": 0.01, "orange": 0.07, "yellow": 0.37},
}
STATUS_SHARES = {
    "dangerous_building": {"remediated": 0.42, "remediating": 0.14, "monitoring": 0.28, "closed": 0.05},
    "geological": {"remediated": 0.30, "remediating": 0.10, "monitoring": 0.45, "closed": 0.05},
    "waterlogging": {"remediated": 0.35, "remediating": 0.18, "monitoring": 0.35, "closed": 0.04},
}
# The stages a point went through before its current status (the trigger dates the current one).
PATH = {
    "identified": (),
    "monitoring": ("identified",),
    "remediating": ("identified", "monitoring"),
    "remediated": ("identified", "monitoring", "remediating"),
    "closed": ("identified", "monitoring"),
}
FIRST_DAY = date(2015, 1, 1)
LAST_DAY = date(2024, 12, 31)


@dataclass(frozen=True)
class Hill:
    """A hilly area with geological hazards: a Gaussian bump around (lon, lat) with its kind mix."""

    name: str
    lon: float
    lat: float
    sigma_m: float
    share: float
    mix: dict[str, float]


_SLOPE = {"landslide": 0.50, "collapse": 0.38, "debris_flow": 0.04, "ground_subsidence": 0.08}
_KARST = {"landslide": 0.30, "collapse": 0.35, "ground_subsidence": 0.35}
_QUARRY = {"collapse": 0.60, "landslide": 0.40}
_STEEP = {"landslide": 0.52, "collapse": 0.30, "debris_flow": 0.13, "ground_subsidence": 0.05}

HILLS: tuple[Hill, ...] = (
    Hill("老山", 118.56, 32.09, 3500, 0.16, _SLOPE),
    Hill("紫金山", 118.845, 32.070, 1800, 0.10, {"landslide": 0.55, "collapse": 0.40, "debris_flow": 0.05}),
    Hill("幕府山", 118.79, 32.125, 1500, 0.06, _QUARRY),
    Hill(
        "栖霞山",
        118.955,
        32.155,
        2000,
        0.08,
        {"collapse": 0.45, "landslide": 0.45, "ground_subsidence": 0.10},
    ),
    Hill("汤山", 119.05, 32.06, 3000, 0.08, _KARST),
    Hill("牛首山", 118.74, 31.92, 2500, 0.08, _SLOPE),
    Hill("方山", 118.875, 31.895, 1500, 0.04, _QUARRY),
    Hill("青龙山", 118.98, 31.99, 3000, 0.07, _KARST),
    Hill("横山", 118.85, 31.73, 3500, 0.05, _SLOPE),
    Hill("无想山", 119.06, 31.60, 3000, 0.08, _STEEP),
    Hill("东庐山", 119.13, 31.66, 2500, 0.05, _STEEP),
    Hill("游子山", 119.06, 31.33, 2500, 0.06, _STEEP),
    Hill("青山", 119.17, 31.38, 3000, 0.05, _SLOPE),
)


def build_demo_hazards(
    conn: psycopg.Connection,
    *,
    seed: int = 42,
    actor: str = "demo",
    scale: float = 1.0,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Register seeded demo hazard points when there are none yet; skip (and say so) otherwise.

    Runs in the caller's transaction (a savepoint); SCALE multiplies the counts (1 = Nanjing's).
    """
    started = time.perf_counter()
    report = progress or (lambda *_: None)
    with conn.transaction():
        # Two builds at once must not both see an empty registry: the second waits, then skips.
        conn.execute("LOCK TABLE hazard_points IN SHARE ROW EXCLUSIVE MODE")
        existing = conn.execute("SELECT count(*) FROM hazard_points").fetchone()[0]
        if existing:
            return {"skipped": True, "reason": f"the registry already holds {existing} hazard point(s)"}
        report("generating hazard points", 0, 1)
        records = generate_demo_hazards(conn, seed=seed, scale=scale)
        report("generating hazard points", 1, 1)
        report("storing hazard points (and colouring the map)", 0, 1)
        conn.execute(sql("hazard_demo_insert"), {**_columns(records), "actor": actor})
        report("storing hazard points (and colouring the map)", 1, 1)
    rows = conn.execute(
        "SELECT kind, status, level, count(*) FROM hazard_points WHERE created_by = %s"
        " GROUP BY kind, status, level",
        (actor,),
    ).fetchall()
    by: dict[str, dict[str, int]] = {"kind": {}, "status": {}, "level": {}}
    for kind, status, level, n in rows:
        for dim, value in (("kind", kind), ("status", status), ("level", level)):
            by[dim][value] = by[dim].get(value, 0) + n
    return {
        "skipped": False,
        "hazard_points": sum(n for *_, n in rows),
        "by_kind": by["kind"],
        "by_status": by["status"],
        "by_level": by["level"],
        "polygons": sum(1 for r in records if r["geom"].geom_type != "Point"),
        "seconds": round(time.perf_counter() - started, 2),
    }


def generate_demo_hazards(conn: psycopg.Connection, *, seed: int = 42, scale: float = 1.0) -> list[dict]:
    """The demo hazard points as row dicts; the same seed and city give the same rows."""
    cells = load_comprehensive_cells(conn)
    if not len(cells["codes"]):
        raise ValueError("the comprehensive grid is empty; build the demo city first (gridrisk demo build)")
    rows = conn.execute(
        "SELECT code, name, ST_AsBinary(geom) FROM cells WHERE layer = 'district' ORDER BY code"
    ).fetchall()
    districts = {
        "codes": [r[0] for r in rows],
        "names": {r[0]: r[1] for r in rows},
        "geoms": shapely.from_wkb([bytes(r[2]) for r in rows]),
    }
    shapely.prepare(districts["geoms"])
    rng = np.random.default_rng([seed, zlib.crc32(b"hazard points")])
    records = _dangerous_buildings(cells, districts, rng, scale)
    records += _geological(districts, rng, scale)
    records += _waterlogging(districts, rng, scale)
    _assign_codes(records)
    return records


def _district_at(districts: dict, x: float, y: float) -> str | None:
    """The loaded district containing (x, y); None outside them all (or in an unloaded one)."""
    hits = [
        c for c, g in zip(districts["codes"], districts["geoms"], strict=True) if shapely.contains_xy(g, x, y)
    ]
    return hits[0] if hits else None


def _metres(lat: float) -> tuple[float, float]:
    """Degrees per metre in longitude and latitude at LAT."""
    return 1 / (M_PER_DEG_LON_EQ * math.cos(math.radians(lat))), 1 / M_PER_DEG_LAT


def _pick(options, u: float):
    """The option a uniform draw U in [0, 1) lands on."""
    return options[min(int(u * len(options)), len(options) - 1)]


def _apportion(total: float, shares: list[float]) -> list[int]:
    """Whole counts proportional to SHARES, summing to round(TOTAL × sum(SHARES)) (largest remainder)."""
    exact = [total * x for x in shares]
    counts = [int(e) for e in exact]
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: round(sum(exact)) - sum(counts)]:
        counts[i] += 1
    return counts


def _person(rng: np.random.Generator) -> str:
    """A plausible Chinese name for the person responsible."""
    given = "".join(_pick(GIVEN, u) for u in rng.random(int(rng.integers(1, 3))))
    return _pick(SURNAMES, rng.random()) + given


def _levels_and_statuses(n: int, group: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Exactly the shares of each level and status (rounded), in random order."""
    out = []
    for shares, rest in ((LEVEL_SHARES[group], "blue"), (STATUS_SHARES[group], "identified")):
        values = [v for v, s in shares.items() for _ in range(round(n * s))][:n]
        values += [rest] * (n - len(values))
        out.append(rng.permutation(np.array(values, dtype=object)))
    return out[0], out[1]


def _dates(status: str, rng: np.random.Generator) -> dict[str, str]:
    """Plausible dates for the stages before STATUS (the database dates the current one)."""
    # Counted back from a day up to LAST_DAY (at most 3 × 400 days per path), so every stage lies
    # between FIRST_DAY and LAST_DAY, never in the future of a build.
    day = LAST_DAY - timedelta(days=int(rng.integers((LAST_DAY - FIRST_DAY).days - 1200)))
    out = {}
    for stage in reversed(PATH[status]):
        out[stage] = day.isoformat() + "T09:00:00+08:00"
        day -= timedelta(days=int(rng.integers(20, 400)))
    return dict(reversed(out.items()))


def _blob(x: float, y: float, r_min: float, r_max: float, rng: np.random.Generator) -> shapely.Polygon:
    """A star-shaped outline of radius R_MIN..R_MAX m around (x, y).

    One vertex per 36° sector: the angles increase and no gap reaches 180°, so the centre sees the
    whole outline and the ring never crosses itself (sorted uniform angles can leave a gap > 180°).
    """
    kx, ky = _metres(y)
    angles = (np.arange(10) + rng.uniform(0.1, 0.9, 10)) * (2 * math.pi / 10)
    radius = rng.uniform(r_min, r_max) * rng.uniform(0.7, 1.2, 10)
    return shapely.Polygon(
        np.column_stack([x + radius * np.cos(angles) * kx, y + radius * np.sin(angles) * ky])
    )


def _footprint(x: float, y: float, rng: np.random.Generator) -> shapely.Polygon:
    """A building footprint: a rotated 12–40 m × 8–25 m rectangle centred on (x, y)."""
    kx, ky = _metres(y)
    w, h = rng.uniform(12, 40), rng.uniform(8, 25)
    rect = shapely.box(-w / 2, -h / 2, w / 2, h / 2)
    rect = affinity.rotate(rect, float(rng.uniform(0, 180)), origin=(0, 0))
    return affinity.translate(affinity.scale(rect, kx, ky, origin=(0, 0)), x, y)


def _dangerous_buildings(cells: dict, districts: dict, rng: np.random.Generator, scale: float) -> list[dict]:
    loaded = [c for c in BUILDING_DISTRICTS if c in districts["names"]]
    dx = (cells["cx"] - OLD_CITY[0]) * M_PER_DEG_LON_EQ * math.cos(math.radians(OLD_CITY[1]))
    dy = (cells["cy"] - OLD_CITY[1]) * M_PER_DEG_LAT
    weight = cells["population"] * (0.3 + np.exp(-(dx**2 + dy**2) / (2 * OLD_CITY_SIGMA_M**2)))
    idx_parts = []
    counts = _apportion(N_DANGEROUS_BUILDINGS * scale, [BUILDING_DISTRICTS[c] for c in loaded])
    for code, k in zip(loaded, counts, strict=True):
        w = np.where(cells["district"] == code, weight, 0.0)
        if k and w.sum() > 0:
            idx_parts.append(rng.choice(len(w), size=k, p=w / w.sum()))
    if not idx_parts:
        return []
    idx = np.concatenate(idx_parts)
    lon, lat = points_in_cells(cells["geoms"], idx, rng)
    level, status = _levels_and_statuses(len(idx), "dangerous_building", rng)
    out = []
    for i, cell in enumerate(idx):
        dcode = cells["district"][cell]
        dname = districts["names"][dcode]
        street = _pick(STREETS[dcode], rng.random())
        number = int(rng.integers(1, 260))
        btype = _pick(BUILDING_TYPES, rng.random())
        grade = "D" if level[i] in ("red", "orange") or rng.random() < 0.2 else "C"
        households = max(1, round(rng.lognormal(math.log(6), 0.7) * {"red": 3, "orange": 2}.get(level[i], 1)))
        persons = round(households * rng.uniform(2.2, 3.1))
        area = households * rng.uniform(45, 90)
        geom = _footprint(lon[i], lat[i], rng) if rng.random() < 0.25 else shapely.Point(lon[i], lat[i])
        out.append(
            {
                "kind": "dangerous_building",
                "district": dcode,
                "name": f"{street}{number}号{btype}（{grade}级危房）",
                "address": f"南京市{dname}{street}{number}号",
                "geom": geom,
                "level": level[i],
                "status": status[i],
                "persons": persons,
                "value": round(area * rng.uniform(1.5, 4.0), 1),  # 10,000 yuan per m² of old housing
                "person": _person(rng),
                "unit": f"{dname}住房和城乡建设局（房屋安全管理）"
                if rng.random() < 0.5
                else f"{dname}{street}社区居委会",
                "notes": NOTES["dangerous_building"][status[i]].format(grade=grade),
                "dates": _dates(status[i], rng),
            }
        )
    return out


# National 险情 grading of geological hazard points by people and property threatened (万元):
# small (blue) < 100 people and < 500; medium (yellow) 100–500 / 500–5,000; large (orange) 500–1,000 /
# 5,000–10,000; very large (red) ≥ 1,000 people or ≥ 10,000.
GEO_BANDS = {"blue": (0, 100, 0, 500), "yellow": (100, 500, 500, 5000), "orange": (500, 1000, 5000, 10000),
             "red": (1000, 1800, 10000, 20000)}  # fmt: skip


def _geological(districts: dict, rng: np.random.Generator, scale: float) -> list[dict]:
    total = sum(h.share for h in HILLS)
    out = []
    hills = [h for h in HILLS if _district_at(districts, h.lon, h.lat)]  # hills in the loaded city only
    counts = _apportion(N_GEOLOGICAL * scale, [h.share / total for h in hills])
    n = sum(counts)
    level, status = _levels_and_statuses(n, "geological", rng)
    i = 0
    for hill, k in zip(hills, counts, strict=True):
        kx, ky = _metres(hill.lat)
        kinds = list(hill.mix)
        probs = np.array([hill.mix[c] for c in kinds])
        seq = 0
        for _ in range(k):
            for _attempt in range(200):  # redraw points that fall outside the loaded districts
                x = hill.lon + rng.normal(0, hill.sigma_m) * kx
                y = hill.lat + rng.normal(0, hill.sigma_m) * ky
                dcode = _district_at(districts, x, y)
                if dcode:
                    break
            else:
                x, y, dcode = hill.lon, hill.lat, _district_at(districts, hill.lon, hill.lat)
            kind = kinds[rng.choice(len(kinds), p=probs / probs.sum())]
            lo, hi, vlo, vhi = GEO_BANDS[level[i]]
            persons = int(min(hi - 1, lo + rng.lognormal(math.log(max(8, lo * 0.2)), 0.8)))
            value = round(min(vhi - 1, max(vlo, persons * rng.uniform(2, 8))), 1)
            shape_share = {"landslide": 0.4, "collapse": 0.15, "ground_subsidence": 0.3}.get(kind, 0.0)
            if rng.random() < shape_share:
                radius = {"landslide": (30, 120), "collapse": (20, 60)}.get(kind, (10, 40))
                geom = _blob(x, y, *radius, rng)
            else:
                geom = shapely.Point(x, y)
            seq += 1
            dname = districts["names"][dcode]
            place = _pick(HILL_PLACES, rng.random())
            out.append(
                {
                    "kind": kind,
                    "district": dcode,
                    "name": f"{hill.name}{place}{seq}号{GEO_CN[kind]}",
                    "address": f"南京市{dname}{hill.name}{place}",
                    "geom": geom,
                    "level": level[i],
                    "status": status[i],
                    "persons": persons,
                    "value": value,
                    "person": _person(rng),
                    "unit": f"南京市规划和自然资源局{dname.removesuffix('区')}分局",
                    "notes": NOTES["geological"][status[i]],
                    "dates": _dates(status[i], rng),
                }
            )
            i += 1
    return out


def _waterlogging(districts: dict, rng: np.random.Generator, scale: float) -> list[dict]:
    lines = {name: shapely.LineString(pts) for name, pts in ROADS.items()}
    total = sum(line.length for line in lines.values())
    kept = {
        name: line
        for name, line in lines.items()
        if _district_at(districts, *line.interpolate(0.5, normalized=True).coords[0])
    }
    counts = dict(
        zip(kept, _apportion(N_WATERLOGGING * scale, [kept[n].length / total for n in kept]), strict=True)
    )
    level, status = _levels_and_statuses(sum(counts.values()), "waterlogging", rng)
    out = []
    i = 0
    for name, line in kept.items():
        for seq in range(1, counts[name] + 1):
            for _attempt in range(200):  # a road crossing into an unloaded district: redraw
                t = rng.random()
                p = line.interpolate(t, normalized=True)
                kx, ky = _metres(p.y)
                x, y = p.x + rng.normal(0, 15) * kx, p.y + rng.normal(0, 15) * ky
                dcode = _district_at(districts, x, y)
                if dcode:
                    break
            else:
                p = line.interpolate(0.5, normalized=True)
                x, y, dcode = p.x, p.y, _district_at(districts, p.x, p.y)
            if rng.random() < 0.25:
                # The flooded stretch: 60–200 m of the road, 12–25 m either side, drawn in metres.
                ahead = line.interpolate(min(1.0, t + 0.01), normalized=True)
                back = line.interpolate(max(0.0, t - 0.01), normalized=True)
                angle = math.atan2((ahead.y - back.y) / ky, (ahead.x - back.x) / kx)
                half = rng.uniform(30, 100)
                stretch = shapely.LineString(
                    [
                        (-half * math.cos(angle), -half * math.sin(angle)),
                        (half * math.cos(angle), half * math.sin(angle)),
                    ]
                ).buffer(rng.uniform(12, 25), cap_style="flat")
                geom = affinity.translate(affinity.scale(stretch, kx, ky, origin=(0, 0)), x, y)
            else:
                geom = shapely.Point(x, y)
            spot = _pick(FLOOD_SPOTS, rng.random())
            dname = districts["names"][dcode]
            persons = int(
                rng.lognormal(math.log(12), 0.9) * {"red": 4, "orange": 2.5, "yellow": 1.5}.get(level[i], 1)
            )
            out.append(
                {
                    "kind": "waterlogging",
                    "district": dcode,
                    "name": f"{name}{spot}易积淹水点（{seq}）",
                    "address": f"南京市{dname}{name}",
                    "geom": geom,
                    "level": level[i],
                    "status": status[i],
                    "persons": persons,
                    "value": round(persons * rng.uniform(1, 6), 1),  # vehicles and ground-floor shops
                    "person": _person(rng),
                    "unit": f"{dname}水务局",
                    "notes": NOTES["waterlogging"][status[i]],
                    "dates": _dates(status[i], rng),
                }
            )
            i += 1
    return out


PREFIX = {
    "dangerous_building": "WF",  # 危房
    "landslide": "HP",  # 滑坡
    "collapse": "BT",  # 崩塌
    "debris_flow": "NSL",  # 泥石流
    "ground_subsidence": "DM",  # 地面塌陷
    "waterlogging": "JS",  # 积水
}


def _assign_codes(records: list[dict]) -> None:
    """Registry codes YH-<district>-<kind>-<seq>, numbered per district and kind in generation order."""
    seq: dict[tuple[str, str], int] = {}
    for r in records:
        key = (r["district"], PREFIX[r["kind"]])
        seq[key] = seq.get(key, 0) + 1
        r["code"] = f"YH-{key[0]}-{key[1]}-{seq[key]:04d}"


def _columns(records: list[dict]) -> dict[str, list]:
    """Parallel arrays for the one INSERT … SELECT FROM unnest(…) statement."""
    return {
        "code": [r["code"] for r in records],
        "name": [r["name"] for r in records],
        "kind": [r["kind"] for r in records],
        "wkb": [shapely.to_wkb(r["geom"]) for r in records],
        "persons": [int(r["persons"]) for r in records],
        "value": [float(r["value"]) for r in records],
        "level": [str(r["level"]) for r in records],
        "status": [str(r["status"]) for r in records],
        "dates": [orjson.dumps(r["dates"]).decode() for r in records],
        "person": [r["person"] for r in records],
        "unit": [r["unit"] for r in records],
        "notes": [r["notes"] for r in records],
        "address": [r["address"] for r in records],
        "district": [r["district"] for r in records],
    }
