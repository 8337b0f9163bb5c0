"""Demo risk sources for the demo city: about 30,000, seeded, clustered where people and industry are.

Locations mix a population-weighted draw over the comprehensive grid with Nanjing's industrial
clusters (the Luhe chemical park, the Qixia port, the Jiangning development zone, Pukou); each
source is a point drawn uniformly inside its cell, or a small polygon (construction sites,
tailings ponds, large venues) around it. Levels are assigned by stratified draw so the map shows
the usual mix (about 1.5 % red, 9 % orange, a third yellow, the rest blue), then expressed as
LEC or LS values that reach that level under the stored thresholds, or as a direct level.
The rows go through the bulk import's validation and single-statement upsert, so the triggers
colour the map exactly as they do for an imported file.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass
from itertools import product
from typing import Any

import numpy as np
import psycopg
import shapely

from gridrisk.demo.source_names import (
    ANY_ROADS,
    DEPARTMENTS,
    DIRECT_REASONS,
    GAS_OPERATORS,
    INDUSTRY,
    NAME_WORDS,
    ROADS,
    SITE_KINDS,
)
from gridrisk.models.risk_sources import LEC_C, LEC_E, LEC_L
from gridrisk.registry.bulk import Progress, import_records
from gridrisk.registry.files import Record
from gridrisk.registry.risk_sources import RISK_SOURCES

M_PER_DEG_LAT = 110_540.0
M_PER_DEG_LON_EQ = 111_320.0

LEVEL_SHARES = {"red": 0.015, "orange": 0.09, "yellow": 0.34}  # blue takes the rest
METHOD_SHARES = {"direct": 0.015, "LS": 0.15}  # LEC takes the rest
STATUS_SHARES = {"suspended": 0.02, "closed": 0.01}  # active takes the rest
PLATE_SHARE = 0.85
TAILINGS_SHARE = 0.001

# How strongly a category leans towards the higher levels in the stratified draw.
RISKINESS = {
    "hazardous_chemicals": 3.0,
    "tailings_pond": 3.0,
    "fireworks": 2.5,
    "dust_explosion": 2.0,
    "ammonia_refrigeration": 2.0,
    "gas": 1.5,
    "road_water_transport": 1.2,
    "construction_site": 1.2,
    "confined_space": 1.2,
    "special_equipment": 1.0,
    "crowded_place": 0.8,
    "other": 0.6,
}
# People usually on site by category (staff, residents, visitors): drawn log-uniformly in the range.
PERSONS = {
    "crowded_place": (100, 3000),
    "construction_site": (30, 600),
    "hazardous_chemicals": (10, 300),
    "dust_explosion": (20, 300),
    "ammonia_refrigeration": (10, 200),
    "road_water_transport": (5, 200),
    "special_equipment": (5, 100),
    "tailings_pond": (5, 60),
    "fireworks": (3, 40),
    "gas": (2, 50),
    "confined_space": (2, 30),
    "other": (5, 100),
}

# The chance that a source of the category is drawn as a polygon rather than a point.
POLYGON_SHARE = {"construction_site": 0.35, "tailings_pond": 1.0, "crowded_place": 0.05}

URBAN_MIX = {
    "crowded_place": 0.24,
    "gas": 0.14,
    "construction_site": 0.15,
    "special_equipment": 0.14,
    "confined_space": 0.09,
    "hazardous_chemicals": 0.05,
    "road_water_transport": 0.05,
    "fireworks": 0.03,
    "ammonia_refrigeration": 0.03,
    "dust_explosion": 0.03,
    "other": 0.05,
}


@dataclass(frozen=True)
class Cluster:
    """An industrial area: a Gaussian bump of sources around (lon, lat) with its own category mix."""

    name: str
    lon: float
    lat: float
    sigma_m: float
    share: float
    mix: dict[str, float]


CLUSTERS: tuple[Cluster, ...] = (
    Cluster(
        "南京江北新材料科技园（六合化工园）",
        118.80,
        32.25,
        3500,
        0.10,
        {
            "hazardous_chemicals": 0.45,
            "special_equipment": 0.14,
            "confined_space": 0.10,
            "gas": 0.07,
            "dust_explosion": 0.06,
            "ammonia_refrigeration": 0.04,
            "road_water_transport": 0.07,
            "construction_site": 0.04,
            "other": 0.03,
        },
    ),
    Cluster(
        "栖霞龙潭港区",
        118.90,
        32.15,
        3000,
        0.06,
        {
            "road_water_transport": 0.30,
            "hazardous_chemicals": 0.25,
            "special_equipment": 0.16,
            "confined_space": 0.08,
            "gas": 0.06,
            "construction_site": 0.07,
            "ammonia_refrigeration": 0.04,
            "other": 0.04,
        },
    ),
    Cluster(
        "江宁经济技术开发区",
        118.82,
        31.90,
        4000,
        0.08,
        {
            "special_equipment": 0.24,
            "dust_explosion": 0.15,
            "hazardous_chemicals": 0.14,
            "confined_space": 0.13,
            "construction_site": 0.14,
            "gas": 0.08,
            "ammonia_refrigeration": 0.06,
            "other": 0.06,
        },
    ),
    Cluster(
        "浦口经济开发区",
        118.60,
        32.05,
        3500,
        0.05,
        {
            "special_equipment": 0.22,
            "hazardous_chemicals": 0.16,
            "dust_explosion": 0.12,
            "confined_space": 0.12,
            "construction_site": 0.16,
            "gas": 0.08,
            "road_water_transport": 0.08,
            "other": 0.06,
        },
    ),
)

LEC_WEIGHTS = {
    "L": {10: 0.3, 6: 0.6, 3: 1.0, 1: 1.0, 0.5: 0.8, 0.2: 0.5, 0.1: 0.3},
    "E": {10: 0.5, 6: 1.0, 3: 1.0, 2: 0.8, 1: 0.6, 0.5: 0.4},
    "C": {100: 0.2, 40: 0.5, 15: 1.0, 7: 1.0, 3: 0.8, 1: 0.5},
}


def build_demo_sources(
    conn: psycopg.Connection,
    *,
    seed: int = 42,
    count: int = 30_000,
    actor: str = "demo",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Register COUNT seeded demo risk sources when the registry is empty; skip (and say so) otherwise.

    Only an empty registry is filled: replacing sources would mean deleting rows, which the map's
    triggers do not follow. Runs in the caller's transaction (a savepoint); raises on rejection.
    """
    started = time.perf_counter()
    existing = conn.execute("SELECT count(*) FROM risk_sources").fetchone()[0]
    if existing:
        return {"skipped": True, "reason": f"the registry already holds {existing} risk source(s)"}
    report = progress or (lambda *_: None)
    report("generating sources", 0, 1)
    records = generate_demo_records(conn, seed=seed, count=count)
    report("generating sources", 1, 1)
    result = import_records(
        conn, RISK_SOURCES, records, actor=actor, progress=progress, what="The demo sources were rejected"
    )
    if not result.ok:
        first = "; ".join(f"row {e['row']} {e['field']}: {e['problem']}" for e in result.errors[:5])
        raise RuntimeError(f"{result.message} {first}")
    levels = dict(
        conn.execute(
            "SELECT level, count(*) FROM risk_sources WHERE created_by = %s GROUP BY level", (actor,)
        ).fetchall()
    )
    return {
        "skipped": False,
        "sources": result.inserted,
        "levels": levels,
        "polygons": sum(1 for r in records if r.geometry is not None),
        "seconds": round(time.perf_counter() - started, 2),
        "stages": {k: round(v, 2) for k, v in result.stages.items()},
    }


def generate_demo_records(conn: psycopg.Connection, *, seed: int = 42, count: int = 30_000) -> list[Record]:
    """The demo sources as import records; the same seed and city give the same records."""
    cells = load_comprehensive_cells(conn)
    if not len(cells["codes"]):
        raise ValueError("the comprehensive grid is empty; build the demo city first")
    districts = dict(conn.execute("SELECT code, name FROM cells WHERE layer = 'district'").fetchall())
    thresholds = conn.execute(
        "SELECT method, level, min_score, min_inclusive FROM assessment_thresholds"
    ).fetchall()
    categories = {r[0] for r in conn.execute("SELECT code FROM risk_categories").fetchall()}
    rng = np.random.default_rng([seed, zlib.crc32(b"risk sources")])
    cell_idx, category = _draw_cells_and_categories(cells, count, rng)
    category = np.array([c if c in categories else "other" for c in category], dtype=object)
    lon, lat = points_in_cells(cells["geoms"], cell_idx, rng)
    level = _stratified_levels(category, rng)
    method = _methods(len(level), rng)
    assessments = _assessments(method, level, thresholds, rng)
    # From a generator of their own, so that adding them changed no other draw of the demo.
    people = np.random.default_rng([seed, zlib.crc32(b"risk source persons")]).random(len(category))
    lo_hi = np.array([PERSONS.get(c, PERSONS["other"]) for c in category], dtype=float)
    persons = np.rint(np.exp(np.log(lo_hi[:, 0]) + people * np.log(lo_hi[:, 1] / lo_hi[:, 0]))).astype(int)
    return _records(cells, districts, cell_idx, category, lon, lat, persons, assessments, rng)


def load_comprehensive_cells(conn: psycopg.Connection) -> dict[str, Any]:
    """The comprehensive grid's cells (prepared geometries, centroids, population) in code order."""
    rows = conn.execute(
        "SELECT code, coalesce(district_code, ''), population, area_m2, ST_AsBinary(geom)"
        " FROM cells WHERE layer = 'comprehensive' ORDER BY code"
    ).fetchall()
    geoms = shapely.from_wkb([bytes(r[4]) for r in rows])
    shapely.prepare(geoms)
    centroids = shapely.centroid(geoms)
    return {
        "codes": [r[0] for r in rows],
        "district": np.array([r[1] for r in rows], dtype=object),
        "population": np.array([float(r[2]) for r in rows]),
        "area": np.array([float(r[3]) for r in rows]),
        "geoms": geoms,
        "cx": shapely.get_x(centroids),
        "cy": shapely.get_y(centroids),
    }


def _draw_cells_and_categories(
    cells: dict[str, Any], count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Which cell each source lies in and its category: a mixture of urban, industrial and rural draws."""
    pop, area = cells["population"], cells["area"]
    components: list[tuple[np.ndarray, dict[str, float], float]] = []
    for cl in CLUSTERS:
        dx = (cells["cx"] - cl.lon) * M_PER_DEG_LON_EQ * math.cos(math.radians(cl.lat))
        dy = (cells["cy"] - cl.lat) * M_PER_DEG_LAT
        weight = np.exp(-(dx**2 + dy**2) / (2 * cl.sigma_m**2)) * area
        # A cluster outside the loaded city (a small test city) is dropped; the towns take its share.
        if weight.sum() > 0.2 * 2 * math.pi * cl.sigma_m**2:
            components.append((weight, cl.mix, cl.share))
    n_tailings = max(1, round(count * TAILINGS_SHARE))
    # Tailings ponds lie in the countryside: cells weighted by area where few people live.
    rural = area * (pop / np.maximum(area, 1) < np.quantile(pop / np.maximum(area, 1), 0.3))
    urban_share = 1 - sum(share for *_, share in components)
    components.insert(0, (pop.copy(), URBAN_MIX, urban_share))
    sizes = rng.multinomial(count - n_tailings, [share for *_, share in components])
    cell_parts, cat_parts = [], []
    for (weight, mix, _), k in zip(components, sizes, strict=True):
        cell_parts.append(rng.choice(len(weight), size=k, p=weight / weight.sum()))
        names = list(mix)
        probs = np.array([mix[c] for c in names])
        cat_parts.append(np.array(names, dtype=object)[rng.choice(len(names), size=k, p=probs / probs.sum())])
    rural = rural if rural.sum() > 0 else area
    cell_parts.append(rng.choice(len(rural), size=n_tailings, p=rural / rural.sum()))
    cat_parts.append(np.full(n_tailings, "tailings_pond", dtype=object))
    return np.concatenate(cell_parts), np.concatenate(cat_parts)


def points_in_cells(
    geoms: np.ndarray, idx: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One uniform random point inside each cell GEOMS[IDX] (vectorised rejection sampling)."""
    bounds = shapely.bounds(geoms)[idx]
    lon = np.full(len(idx), np.nan)
    lat = np.full(len(idx), np.nan)
    pending = np.arange(len(idx))
    for _ in range(64):
        if not len(pending):
            break
        b = bounds[pending]
        x = b[:, 0] + rng.random(len(pending)) * (b[:, 2] - b[:, 0])
        y = b[:, 1] + rng.random(len(pending)) * (b[:, 3] - b[:, 1])
        inside = shapely.contains_xy(geoms[idx[pending]], x, y)
        lon[pending[inside]], lat[pending[inside]] = x[inside], y[inside]
        pending = pending[~inside]
    if len(pending):  # slivers: fall back to a point that is surely inside
        pts = shapely.point_on_surface(geoms[idx[pending]])
        lon[pending], lat[pending] = shapely.get_x(pts), shapely.get_y(pts)
    return lon, lat


def _stratified_levels(category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Exactly the target share of each level, drawn towards the riskier categories."""
    n = len(category)
    risk = np.array([RISKINESS.get(c, 1.0) for c in category])
    level = np.full(n, "blue", dtype=object)
    free = np.ones(n, dtype=bool)
    for name, share, power in (("red", LEVEL_SHARES["red"], 2.0), ("orange", LEVEL_SHARES["orange"], 1.5),
                               ("yellow", LEVEL_SHARES["yellow"], 1.0)):  # fmt: skip
        k = round(n * share)
        candidates = np.flatnonzero(free)
        w = risk[candidates] ** power
        chosen = rng.choice(candidates, size=min(k, len(candidates)), replace=False, p=w / w.sum())
        level[chosen] = name
        free[chosen] = False
    # Tailings ponds are never low risk in practice: a blue one becomes yellow.
    level[(category == "tailings_pond") & (level == "blue")] = "yellow"
    return level


def _methods(n: int, rng: np.random.Generator) -> np.ndarray:
    u = rng.random(n)
    method = np.full(n, "LEC", dtype=object)
    method[u < METHOD_SHARES["direct"] + METHOD_SHARES["LS"]] = "LS"
    method[u < METHOD_SHARES["direct"]] = "direct"
    return method


def _level_of(method: str, score: float, thresholds: list[tuple]) -> str:
    """The level the stored thresholds give SCORE (the rule of the database's assess_level)."""
    best, best_min = "blue", -math.inf
    for m, level, min_score, inclusive in thresholds:
        if m == method and (score > min_score or (inclusive and score == min_score)) and min_score > best_min:
            best, best_min = level, min_score
    return best


def _assessments(
    method: np.ndarray, level: np.ndarray, thresholds: list[tuple], rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Per source, assessment values that reach its level (LEC/LS), or the direct level with a reason."""
    lec: dict[str, list[tuple[float, float, float]]] = {}
    lec_w: dict[str, list[float]] = {}
    for L, E, C in product(LEC_L, LEC_E, LEC_C):
        lv = _level_of("LEC", L * E * C, thresholds)
        lec.setdefault(lv, []).append((L, E, C))
        lec_w.setdefault(lv, []).append(LEC_WEIGHTS["L"][L] * LEC_WEIGHTS["E"][E] * LEC_WEIGHTS["C"][C])
    ls: dict[str, list[tuple[int, int]]] = {}
    for L, S in product(range(1, 6), range(1, 6)):
        ls.setdefault(_level_of("LS", L * S, thresholds), []).append((L, S))
    out = []
    u = rng.random(len(method))
    for m, lv, x in zip(method, level, u, strict=True):
        if m == "LEC" and lv in lec:
            w = np.cumsum(lec_w[lv])
            L, E, C = lec[lv][int(np.searchsorted(w, x * w[-1]))]
            out.append({"method": "LEC", "L": L, "E": E, "C": C})
        elif m == "LS" and lv in ls:
            L, S = ls[lv][min(int(x * len(ls[lv])), len(ls[lv]) - 1)]
            out.append({"method": "LS", "L": L, "S": S})
        else:  # direct, or a level the (edited) thresholds cannot reach
            reason = DIRECT_REASONS[min(int(x * len(DIRECT_REASONS)), len(DIRECT_REASONS) - 1)]
            out.append({"method": "direct", "level": lv, "reason": reason})
    return out


def _polygon_around(lon: float, lat: float, kind: str, rng: np.random.Generator) -> shapely.Polygon:
    """A construction-site rectangle (50–300 m, rotated) or a pond-like blob (150–400 m) at (lon, lat)."""
    kx = 1 / (M_PER_DEG_LON_EQ * math.cos(math.radians(lat)))
    ky = 1 / M_PER_DEG_LAT
    if kind == "blob":
        # Star-shaped around the centre (angles increase), so the ring never crosses itself.
        angles = np.sort(rng.uniform(0, 2 * math.pi, 12))
        radius = rng.uniform(150, 400) * rng.uniform(0.7, 1.2, 12)
        xs, ys = radius * np.cos(angles), radius * np.sin(angles)
    else:
        w, h = rng.uniform(50, 300, 2)
        t = rng.uniform(0, math.pi)
        cx = np.array([-w, w, w, -w]) / 2
        cy = np.array([-h, -h, h, h]) / 2
        xs, ys = cx * math.cos(t) - cy * math.sin(t), cx * math.sin(t) + cy * math.cos(t)
    return shapely.Polygon(np.column_stack([lon + xs * kx, lat + ys * ky]))


def _records(
    cells: dict[str, Any],
    districts: dict[str, str],
    cell_idx: np.ndarray,
    category: np.ndarray,
    lon: np.ndarray,
    lat: np.ndarray,
    persons: np.ndarray,
    assessments: list[dict[str, Any]],
    rng: np.random.Generator,
) -> list[Record]:
    """Name, place and register every source; codes run per district in a deterministic order."""
    n = len(cell_idx)
    district = cells["district"][cell_idx]
    order = np.lexsort((np.arange(n), district))  # by district, then draw order
    words = rng.integers(len(NAME_WORDS), size=(n, 2))
    picks = rng.random((n, 6))
    house = rng.integers(1, 400, size=n)
    status_u = rng.random(n)
    poly_u = rng.random(n)
    plate_off = int(rng.integers(10**8))
    seq: dict[str, int] = {}
    records = []
    for row, i in enumerate(order, start=1):
        cat, dcode = category[i], district[i] or "320100"
        dname = districts.get(dcode, "南京市")
        seq[dcode] = seq.get(dcode, 0) + 1
        code = f"RS-{dcode}-{seq[dcode]:06d}"

        def pick(options, j, i=i):
            return options[min(int(picks[i, j] * len(options)), len(options) - 1)]

        road = pick(ROADS.get(dcode, ANY_ROADS), 0)
        brand = NAME_WORDS[words[i, 0]] + NAME_WORDS[words[i, 1]]
        enterprise = f"南京{brand}{pick(INDUSTRY[cat], 1)}有限公司"
        site = pick(SITE_KINDS[cat], 2)
        if cat in ("construction_site", "confined_space", "crowded_place", "tailings_pond", "gas"):
            name = f"{dname}{road}{site}"
        else:
            name = f"{brand}{site}"
        if cat == "gas":
            enterprise = pick((*GAS_OPERATORS, f"南京{brand}燃气有限公司"), 3)
        values: dict[str, Any] = {
            "code": code,
            "name": name,
            "category": cat,
            "address": f"南京市{dname}{road}{house[i]}号",
            "enterprise": enterprise,
            "department": f"{dname}{DEPARTMENTS[cat]}",
            "status": "suspended" if status_u[i] < STATUS_SHARES["suspended"] else "active",
            "persons": int(persons[i]),
            **assessments[i],
        }
        if status_u[i] > 1 - STATUS_SHARES["closed"]:
            values["status"] = "closed"
        if picks[i, 4] < PLATE_SHARE:
            # A bijection on 0..10^8-1 (48271 is coprime to 10^8): plate numbers never collide.
            values["plate_code"] = f"NJ-{dcode}-{(48271 * int(i) + plate_off) % 10**8:08d}"
        geometry = None
        if poly_u[i] < POLYGON_SHARE.get(cat, 0.0):
            geometry = _polygon_around(lon[i], lat[i], "blob" if cat == "tailings_pond" else "rect", rng)
        else:
            values["lon"], values["lat"] = float(lon[i]), float(lat[i])
        records.append(Record(row, values, geometry=geometry))
    return records
