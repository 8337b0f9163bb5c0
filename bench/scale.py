"""The scale ladder: how every cost grows from the demo city (N=1) to a province of N copies of it.

Usage: .venv/bin/python bench/scale.py [--scales 1 3 10] [--seconds 10] [--no-reimport]
For each N, on a scratch copy of the demo database (CREATE DATABASE … TEMPLATE, dropped after):
build the province (`gridrisk demo build --scale N`'s copying step), then measure a full map
recompute, a re-import of the safety layer, `/cells/at` against `/livez` in the same run (1 worker,
8 connections, random points over every city), cold vector tiles (the tile cache off), the whole
safety layer's risk map as GeoJSON, a red rainstorm warning over one whole city (Nanjing), the
database's size and the server worker's memory. Results go to bench/results/scale.json. With
--template naming a database that already holds the province of N, its build is skipped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cells_at import lua_script, random_city_points, server_rss_mb, wait_for_tiles  # noqa: E402
from common import ensure_tool, machine, save, server, wrk  # noqa: E402
from grid_import import export  # noqa: E402
from risk_writes import drop, scratch_copy  # noqa: E402
from targeted_warnings import body as warning_body  # noqa: E402
from tiles_vs_tipg import wrk_list  # noqa: E402

from gridrisk.api_keys import create_key  # noqa: E402
from gridrisk.demo.province import build_province  # noqa: E402
from gridrisk.imports.grid_import import import_layer_file  # noqa: E402
from gridrisk.services.risk_map import recompute_all  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402

TILES = 1500


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int, int]:
    """The Web Mercator tile holding a point."""
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def cold_tile_paths(points: list[tuple[float, float]], n: int) -> list[str]:
    """N distinct z12–z14 safety tiles under random points of the province."""
    rng = random.Random(7)
    seen: dict[tuple[int, int, int], None] = {}
    for lon, lat in points:
        seen.setdefault(tile_of(lon, lat, rng.choice((12, 13, 14))))
        if len(seen) >= n:
            break
    return [f"/tiles/safety/{z}/{x}/{y}.mvt" for z, x, y in seen]


def measure(url: str, scale: int, args) -> dict:
    out: dict = {"scale": scale}
    with psycopg.connect(url) as conn:
        districts = conn.execute("SELECT count(*) FROM cells WHERE layer = 'district'").fetchone()[0]
        if districts == 11 * scale > 11:  # built already (--template names a province)
            out["build"], out["build_s"] = "prebuilt", None
        else:
            started = time.perf_counter()
            out["build"] = build_province(conn, scale)
            out["build_s"] = round(time.perf_counter() - started, 1)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        out["cells"] = dict(conn.execute("SELECT layer, count(*) FROM cells GROUP BY layer").fetchall())
        out["risk_sources"] = conn.execute("SELECT count(*) FROM risk_sources").fetchone()[0]
    print(
        f"N={scale}: built in {out['build_s']} s: {out['cells']}, {out['risk_sources']} sources", flush=True
    )
    if args.recompute:
        with psycopg.connect(url) as conn:
            out["recompute_s"] = round(recompute_all(conn).seconds, 2)
        print(f"N={scale}: recompute {out['recompute_s']} s", flush=True)
    if args.reimport:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "safety.gpkg"
            export(url, "safety", path)
            started = time.perf_counter()
            outcome = import_layer_file(url, "safety", path, source="bench scale")
            if not outcome.ok:
                sys.exit(f"the safety re-import was rejected: {outcome.message}")
            out["safety_reimport_s"] = round(time.perf_counter() - started, 1)
        print(f"N={scale}: safety re-import {out['safety_reimport_s']} s", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        points = random_city_points(conn, 20_000)
        # The warning covers one city (Nanjing's 11 districts; an area names at most 50): its cost
        # should not grow with the province around it.
        nanjing = [
            r[0]
            for r in conn.execute(
                "SELECT code FROM cells WHERE layer = 'district' AND code LIKE '3201%' ORDER BY code"
            )
        ]
        key = create_key(conn, "bench-scale", "operator")[1]
    with tempfile.TemporaryDirectory() as tmp:
        script = lua_script(points, Path(tmp) / "cells.lua")
        with server(url, args.port) as base:
            out["lookup_tiles"] = wait_for_tiles(base)
            for _ in range(2):  # warm: connections, plans, the lookup index
                wrk(f"{base}/livez", seconds=2)
                wrk(f"{base}/cells/at", seconds=2, script=script)
            livez = wrk(f"{base}/livez", seconds=args.seconds)
            cells = wrk(f"{base}/cells/at", seconds=args.seconds, script=script)
            out["livez_rps"] = livez["rps"]
            out["cells_at"] = {k: cells[k] for k in ("rps", "p50_ms", "p99_ms", "non_2xx")}
            out["cells_at_over_livez"] = round(cells["rps"] / livez["rps"], 3)
            out["worker_rss_mb"] = round(server_rss_mb(args.port) or 0)
            with httpx.Client(base_url=base, timeout=600) as client:
                started = time.perf_counter()
                r = client.get("/risk-map/safety")
                r.raise_for_status()
                out["risk_map_safety"] = {
                    "seconds": round(time.perf_counter() - started, 2),
                    "mb": len(r.content) >> 20,
                }
                started = time.perf_counter()
                r = client.post(
                    "/warnings",
                    json=warning_body("BENCH-SCALE", districts=nanjing),
                    headers={"Authorization": f"Bearer {key}"},
                )
                r.raise_for_status()
                out["city_red_warning"] = {
                    "seconds": round(time.perf_counter() - started, 2),
                    "orders": r.json()["result"]["orders"],
                }
        print(f"N={scale}: cells/at {out['cells_at']} vs livez {out['livez_rps']}", flush=True)
        os.environ["GRIDRISK_TILE_CACHE_MB"] = "0"
        try:
            with server(url, args.port) as base:
                wrk_list(base, cold_tile_paths(points[::-1], 50), connections=8)  # warm the pool
                tiles = wrk_list(base, cold_tile_paths(points, TILES), connections=8)
        finally:
            del os.environ["GRIDRISK_TILE_CACHE_MB"]
        out["cold_tiles"] = {k: tiles[k] for k in ("tiles", "rps", "p50_ms", "p99_ms", "errors")}
    with psycopg.connect(url) as conn:
        out["database_mb"] = conn.execute("SELECT pg_database_size(current_database()) >> 20").fetchone()[0]
    print(f"N={scale}: {json.dumps(out, ensure_ascii=False)}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 3, 10])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--no-reimport", dest="reimport", action="store_false")
    parser.add_argument("--no-recompute", dest="recompute", action="store_false")
    parser.add_argument("--template", help="Database to copy (default: the configured one)")
    args = parser.parse_args()
    ensure_tool("wrk", "wrk")
    template = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    if args.template:
        template = psycopg.conninfo.make_conninfo(template, dbname=args.template)
    results = []
    for scale in args.scales:
        url = scratch_copy(template, f"gridrisk_bench_scale_{scale}")
        try:
            results.append(measure(url, scale, args))
        finally:
            drop(url)
        save("scale", {"benchmark": "scale", "machine": machine(), "runs": results})
    first = results[0]
    for r in results[1:]:
        r["cells_at_rate_vs_first"] = round(r["cells_at"]["rps"] / first["cells_at"]["rps"], 3)
    print(save("scale", {"benchmark": "scale", "machine": machine(), "runs": results}))


if __name__ == "__main__":
    main()
