"""Time layer re-imports: the 22,000-cell safety layer, or a new street layer imported then re-imported.

Usage: .venv/bin/python bench/grid_import.py [--layer safety] [--repeat 2]
       .venv/bin/python bench/grid_import.py --streets [--repeat 4]
The first exports the layer from the demo city to a GeoPackage, then imports it back through the
same code path as `gridrisk grids import` (codes unchanged, so workers and attachments survive).
`--streets`, on a scratch copy of the demo database: imports a new 44-cell street layer (every
district in four), then re-imports the same file REPEAT times, and compares the first re-import
with the later ones (a fresh load's first re-import used to take 16 times as long).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import psycopg
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402
from risk_writes import drop, import_streets, scratch_copy  # noqa: E402

from gridrisk.imports.grid_import import import_layer_file  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402


def export(url: str, layer: str, path: Path) -> int:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT code, name, population, ST_AsBinary(geom) FROM cells WHERE layer = %s ORDER BY code",
            (layer,),
        ).fetchall()
    gdf = gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows], "population": [r[2] for r in rows]},
        geometry=shapely.from_wkb([bytes(r[3]) for r in rows]),
        crs=4326,
    )
    gdf.to_file(path, driver="GPKG")
    return len(gdf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="safety")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--streets", action="store_true", help="a new street layer, then re-imports")
    args = parser.parse_args()
    url = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    if args.streets:
        streets(url, args.repeat)
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{args.layer}.gpkg"
        n = export(url, args.layer, path)
        for _ in range(args.repeat):
            stages: dict[str, float] = {}
            started = time.perf_counter()

            def progress(stage: str, done: int, total: int, stages=stages, started=started) -> None:
                stages[stage.split()[0]] = round(time.perf_counter() - started, 2)

            outcome = import_layer_file(url, args.layer, path, progress=progress, source="bench")
            if not outcome.ok:
                sys.exit(f"import rejected: {outcome.message}")
            runs.append({"seconds": round(time.perf_counter() - started, 2), "stage_done_at_s": stages})
            print(f"{args.layer}: {n} cells imported in {runs[-1]['seconds']} s; stages ended at {stages}")
    save(f"grid_import_{args.layer}", {"benchmark": "grid_import", "layer": args.layer, "cells": n,
                                       "machine": machine(), "runs": runs})  # fmt: skip


def streets(source_url: str, repeat: int) -> None:
    """Import a new street layer on a scratch copy, then re-import it REPEAT times."""
    url = scratch_copy(source_url, "gridrisk_bench_grid_import")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            first = import_streets(url, folder)
            print(f"street: 44 new cells imported in {first['seconds']} s", flush=True)
            again = []
            for i in range(repeat):
                started = time.perf_counter()
                outcome = import_layer_file(
                    url, "street", folder / "streets.geojson", source="bench", allow_gaps=True
                )
                if not outcome.ok:
                    sys.exit(f"import rejected: {outcome.message}")
                again.append(round(time.perf_counter() - started, 2))
                print(f"street: re-import {i + 1} in {again[-1]} s", flush=True)
    finally:
        drop(url)
    later = sorted(again[1:]) or again
    ratio = again[0] / later[len(later) // 2]
    print(f"first re-import ÷ median of the later ones: {ratio:.2f}")
    save("grid_import_streets", {"benchmark": "grid_import_streets", "machine": machine(),
                                 "import_s": first["seconds"], "reimports_s": again,
                                 "first_over_later": round(ratio, 2)})  # fmt: skip


if __name__ == "__main__":
    main()
