"""Build the demo city in the database: districts, the three grids at Nanjing's counts, workers."""

from __future__ import annotations

import geopandas as gpd
import psycopg
import shapely

from gridrisk.demo.city import build_demo_grids
from gridrisk.demo.hazards import build_demo_hazards
from gridrisk.demo.response_resources import build_demo_response_resources
from gridrisk.demo.shelters import build_demo_shelters
from gridrisk.demo.sources import build_demo_sources
from gridrisk.services.districts import load_districts
from gridrisk.services.layers import GRID_LAYERS, Progress, write_layer

# Nanjing's real cell counts (SPEC.md, "The domain").
REAL_COUNTS = {"comprehensive": 12_000, "emergency": 1_780, "safety": 22_000}


def districts_frame(conn: psycopg.Connection, codes: list[str] | None = None) -> gpd.GeoDataFrame:
    """The stored district layer (WGS 84) as a GeoDataFrame."""
    rows = conn.execute(
        "SELECT code, name, population, ST_AsBinary(geom) FROM cells WHERE layer = 'district'"
        " AND (%(codes)s::text[] IS NULL OR code = ANY(%(codes)s)) ORDER BY code",
        {"codes": codes},
    ).fetchall()
    return gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows], "population": [int(r[2]) for r in rows]},
        geometry=shapely.from_wkb([bytes(r[3]) for r in rows]),
        crs=4326,
    )


def build_demo(
    conn: psycopg.Connection,
    *,
    seed: int = 42,
    district_codes: list[str] | None = None,
    scale: float = 1.0,
    progress: Progress | None = None,
    hazards: bool = False,
) -> dict[str, dict]:
    """Generate and store the demo grids in one transaction; the same seed gives the same city."""
    if conn.execute("SELECT count(*) FROM cells WHERE layer = 'district'").fetchone()[0] == 0:
        load_districts(conn, progress=progress)
    districts = districts_frame(conn, district_codes)
    if districts.empty:
        raise ValueError(f"none of the districts {district_codes} is loaded")
    counts = {layer: max(len(districts), round(n * scale)) for layer, n in REAL_COUNTS.items()}
    grids = build_demo_grids(districts, seed=seed, counts=counts, progress=progress)
    summary: dict[str, dict] = {}
    with conn.transaction():
        for layer in GRID_LAYERS:
            gdf = grids[layer]
            result = write_layer(conn, layer, gdf, source=f"demo seed={seed}", progress=progress)
            summary[layer] = result.to_dict()
        _write_workers(conn, grids["comprehensive"])
        if hazards:
            # Real-world objects, not a share of the cell count: never scaled.
            summary["hazard_points"] = build_demo_hazards(conn, seed=seed, progress=progress)
    return summary


def _write_workers(conn: psycopg.Connection, gdf: gpd.GeoDataFrame) -> None:
    """One grid worker per comprehensive cell (the demo's 网格员), replacing earlier demo workers."""
    conn.execute("DELETE FROM cell_workers WHERE layer = 'comprehensive'")
    with conn.cursor().copy("COPY cell_workers (layer, cell_code, name, phone) FROM STDIN") as copy:
        for code, name, phone in zip(gdf["code"], gdf["worker_name"], gdf["worker_phone"], strict=True):
            copy.write_row(("comprehensive", code, name, phone))


def ensure_demo(conn: psycopg.Connection, *, seed: int = 42, progress: Progress | None = None) -> list[str]:
    """Build each missing part of the full demo city (each part skips itself when present)."""
    done: list[str] = []
    counts = dict(conn.execute("SELECT layer, count(*) FROM cells GROUP BY layer").fetchall())
    if not counts.get("district"):
        with conn.transaction():
            load_districts(conn, progress=progress)
        done.append("loaded the 11 districts")
    if not any(counts.get(layer) for layer in GRID_LAYERS):
        summary = build_demo(conn, seed=seed, progress=progress)
        done.append("built the grids: " + ", ".join(f"{k} {v['cells']} cells" for k, v in summary.items()))
    else:
        done.append("grids already there: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for name, build in _REGISTRIES:
        with conn.transaction():
            result = build(conn, seed=seed, progress=progress)
        if result.get("skipped"):
            done.append(f"{name}: {result.get('reason', 'already there')}")
        else:
            figures = {k: v for k, v in result.items() if isinstance(v, int | float) and k != "skipped"}
            done.append(f"{name}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
    return done


# The demo registries, each idempotent (it skips itself when its table already has rows).
_REGISTRIES = [
    ("risk sources", build_demo_sources),
    ("hazard points", build_demo_hazards),
    ("shelters", build_demo_shelters),
    ("vulnerable sites, rescue teams and supply depots", build_demo_response_resources),
]
