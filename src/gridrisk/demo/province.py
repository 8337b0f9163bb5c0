"""The scale ladder's demo province: the demo city copied N times side by side, as N cities.

Copy 0 is the demo Nanjing itself; copy k is the same city moved k steps along a grid of 1.0° by
1.5° and labelled as the k-th city of Jiangsu (无锡, 徐州, …, codes 3202xx, 3203xx, …). Every
layer, worker, risk source, hazard point and shelter is copied, so N copies hold N times the
city: N = 10 is about 360,000 cells and 300,000 risk sources, which is what the scale ladder
measures (bench/scale.py). The copies are written through the same paths as real data (layer
writes with their overlays, registry inserts with their triggers), so the map stays exact.
"""

from __future__ import annotations

import math
import time

import geopandas as gpd
import psycopg
import shapely

from gridrisk.services.layers import GRID_LAYERS, Progress, write_layer

# Jiangsu's 13 cities in the order of their codes (3201 Nanjing … 3213 Suqian).
CITIES = (
    "南京",
    "无锡",
    "徐州",
    "常州",
    "苏州",
    "南通",
    "连云港",
    "淮安",
    "盐城",
    "扬州",
    "镇江",
    "泰州",
    "宿迁",
)
MAX_COPIES = len(CITIES)
STEP_DEG = (1.0, 1.5)  # Nanjing spans about 0.9° by 1.4°: copies never overlap

# Registries copied row for row (their columns but id and bookkeeping), with the cells' links
# rebuilt by their own triggers.
REGISTRIES = ("risk_sources", "hazard_points", "shelters")
SKIPPED_COLUMNS = {"id", "version", "created_at", "updated_at"}


def offset(k: int, copies: int) -> tuple[float, float]:
    """Where copy K of COPIES lies relative to the city: a near-square grid, east then north."""
    cols = math.ceil(math.sqrt(copies))
    return (k % cols) * STEP_DEG[0], (k // cols) * STEP_DEG[1]


def copy_code(code: str, k: int) -> str:
    """Copy K's code: Nanjing's 3201 becomes 32(k+1); codes with no district in them get -k."""
    return code.replace("3201", f"32{k + 1:02d}", 1) if "3201" in code else f"{code}-{k}"


def _layer_frame(conn: psycopg.Connection, layer: str) -> gpd.GeoDataFrame:
    rows = conn.execute(
        "SELECT code, name, name_en, population, district_code, props, ST_AsBinary(geom)"
        " FROM cells WHERE layer = %s ORDER BY code",
        (layer,),
    ).fetchall()
    cols = ["code", "name", "name_en", "population", "district_code", "props"]
    return gpd.GeoDataFrame(
        {c: [r[i] for r in rows] for i, c in enumerate(cols)},
        geometry=shapely.from_wkb([bytes(r[6]) for r in rows]),
        crs=4326,
    )


def _copied_frame(frame: gpd.GeoDataFrame, copies: int) -> gpd.GeoDataFrame:
    parts = [frame]
    for k in range(1, copies):
        dx, dy = offset(k, copies)
        part = frame.copy()
        part["code"] = [copy_code(c, k) for c in frame["code"]]
        part["name"] = [f"{CITIES[k]}·{n}" for n in frame["name"]]
        part["district_code"] = [copy_code(c, k) if c else c for c in frame["district_code"]]
        part["geometry"] = shapely.transform(frame.geometry.values, lambda xy, dx=dx, dy=dy: xy + (dx, dy))
        parts.append(part)
    return gpd.GeoDataFrame(
        {c: [v for p in parts for v in p[c]] for c in frame.columns if c != "geometry"},
        geometry=[g for p in parts for g in p.geometry.values],
        crs=4326,
    )


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [r[0] for r in rows if r[0] not in SKIPPED_COLUMNS]


def _copy_sql(table: str, columns: list[str]) -> str:
    """INSERT … SELECT of every row of TABLE as copy %(k)s, moved by %(dx)s, %(dy)s."""
    exprs = []
    for c in columns:
        if c == "geom":
            exprs.append("ST_Translate(geom, %(dx)s, %(dy)s)")
        elif c in ("code", "plate_code", "district_code"):
            exprs.append(
                f"CASE WHEN {c} LIKE '%%3201%%' THEN regexp_replace({c}, '3201', %(prefix)s)"
                f" ELSE {c} || '-' || %(k)s END"
            )
        else:
            exprs.append(c)
    # Only the original rows are copied (codes of copies never hold 3201 nor end in a copy's -k).
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(exprs)} FROM {table}"
        " WHERE id <= %(last)s ORDER BY id"
    )


def build_province(conn: psycopg.Connection, copies: int, *, progress: Progress | None = None) -> dict:
    """Copy the demo city in the database COPIES - 1 times (one transaction); what was written."""
    if not 1 <= copies <= MAX_COPIES:
        raise ValueError(f"a province has 1 to {MAX_COPIES} cities (Jiangsu's), not {copies}")
    report = progress or (lambda *_: None)
    started = time.perf_counter()
    summary: dict = {"copies": copies}
    if copies == 1:
        return summary
    with conn.transaction():
        held = "SELECT count(*) FROM cells WHERE layer = 'district' AND code LIKE %s"
        if conn.execute(held, ("3202%",)).fetchone()[0]:
            raise ValueError("this database already holds a province: build it from the demo city")
        for layer in ("district", *GRID_LAYERS):
            frame = _copied_frame(_layer_frame(conn, layer), copies)
            result = write_layer(conn, layer, frame, source=f"demo province ×{copies}", progress=progress)
            summary[layer] = result.cells
        report("copying workers", 0, 1)
        for k in range(1, copies):
            conn.execute(
                "INSERT INTO cell_workers (layer, cell_code, name, phone)"
                " SELECT layer, replace(cell_code, '3201', %(prefix)s), name, phone FROM cell_workers"
                " WHERE cell_code LIKE '%%3201%%'",
                {"prefix": f"32{k + 1:02d}"},
            )
        report("copying workers", 1, 1)
        for table in REGISTRIES:
            last = conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
            statement = _copy_sql(table, _columns(conn, table))
            for k in range(1, copies):
                report(f"copying {table}", k - 1, copies - 1)
                dx, dy = offset(k, copies)
                params = {"k": str(k), "dx": dx, "dy": dy, "prefix": f"32{k + 1:02d}", "last": last}
                conn.execute(statement, params)
            report(f"copying {table}", copies - 1, copies - 1)
            summary[table] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary
