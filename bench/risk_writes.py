"""Write latency and throughput of POST /risk-sources on the full demo city with a street layer
imported: 1 client, 8 clients over the whole city, 8 clients in one hot block (one district, one
street), then the time and size of GET /risk-map/safety (the whole 22,000-cell map).

Usage: .venv/bin/python bench/risk_writes.py [--seconds 10] [--workers 1]
Runs on a scratch copy of the demo database (CREATE DATABASE … TEMPLATE), dropped afterwards. The
load generator is wrk (each request a new source with its own code, at points given in its script);
the per-caller write rate limit is off for the run, since it measures the write path, not the guard.
Every district is split into four streets (44 cells), imported as the `street` layer first: each
write then also updates a street's counts, as it will in a city that imported its streets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_tool, machine, save, server, wrk  # noqa: E402

from gridrisk.api_keys import create_key  # noqa: E402
from gridrisk.imports.grid_import import import_layer_file  # noqa: E402
from gridrisk.services.risk_map import verify  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402


def scratch_copy(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (info["dbname"],),
        )
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{info["dbname"]}"')
    return psycopg.conninfo.make_conninfo(url, dbname=name)


def drop(url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


STREETS_SQL = """
SELECT d.code || '-S' || q.n, d.name || '第' || q.n || '街道',
       ST_AsGeoJSON(ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_ClipByBox2D(d.geom, q.box)), 3)), 7)
FROM cells d
CROSS JOIN LATERAL (SELECT ST_X(ST_Centroid(d.geom)) AS cx, ST_Y(ST_Centroid(d.geom)) AS cy,
                           ST_Expand(d.geom::box2d, 0.01) AS b) c
CROSS JOIN LATERAL (VALUES
    (1, ST_MakeEnvelope(ST_XMin(c.b), c.cy, c.cx, ST_YMax(c.b))::box2d),
    (2, ST_MakeEnvelope(c.cx, c.cy, ST_XMax(c.b), ST_YMax(c.b))::box2d),
    (3, ST_MakeEnvelope(ST_XMin(c.b), ST_YMin(c.b), c.cx, c.cy)::box2d),
    (4, ST_MakeEnvelope(c.cx, ST_YMin(c.b), ST_XMax(c.b), c.cy)::box2d)) AS q(n, box)
WHERE d.layer = 'district'
ORDER BY 1
"""


def import_streets(url: str, folder: Path) -> dict:
    """Split every district into four streets (quadrants around its centroid) and import them."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(STREETS_SQL).fetchall()
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"code": c, "name": n}, "geometry": json.loads(g)}
            for c, n, g in rows
        ],
    }
    path = folder / "streets.geojson"
    path.write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")
    started = time.perf_counter()
    outcome = import_layer_file(url, "street", path, source="bench", allow_gaps=True)
    if not outcome.ok:
        sys.exit(f"the street layer was rejected: {outcome.message}")
    return {"cells": len(rows), "seconds": round(time.perf_counter() - started, 2)}


def city_points(url: str, n: int) -> list[tuple[float, float]]:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(0.7)")
        return conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), %s, 7))).geom g"
            " FROM cells WHERE layer = 'district') p",
            (n,),
        ).fetchall()


def hot_block(url: str, n: int) -> tuple[list[tuple[float, float]], dict]:
    """N points in a 500 m block of the busiest street: every write there updates the same district,
    street, and a handful of comprehensive, emergency and safety cells."""
    with psycopg.connect(url) as conn:
        street, district, items = conn.execute(
            "SELECT s.code, d.code, (sr.n_red + sr.n_orange + sr.n_yellow + sr.n_blue)"
            " FROM cell_risk sr JOIN cells s ON s.id = sr.cell_id"
            " JOIN cells d ON d.layer = 'district' AND ST_Contains(d.geom, ST_PointOnSurface(s.geom))"
            " WHERE sr.layer = 'street' ORDER BY 3 DESC LIMIT 1"
        ).fetchone()
        conn.execute("SELECT setseed(0.4)")
        pts = conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Intersection(s.geom,"
            " ST_Expand(ST_PointOnSurface(s.geom), 0.0025)), %s, 3))).geom g"
            " FROM cells s WHERE s.layer = 'street' AND s.code = %s) p",
            (n, street),
        ).fetchall()
        district_items = conn.execute(
            "SELECT n_red + n_orange + n_yellow + n_blue FROM cell_risk"
            " WHERE layer = 'district' AND code = %s",
            (district,),
        ).fetchone()[0]
    return pts, {
        "street": street,
        "street_items": items,
        "district": district,
        "district_items": district_items,
    }


def post_script(points, key: str, run: str, path: Path) -> Path:
    """A wrk script POSTing a new source per request, each thread its own codes, points in turn."""
    body = ",".join(f"{{{x:.7f},{y:.7f}}}" for x, y in points)
    path.write_text(
        f"local pts = {{{body}}}\n"
        "local levels = {{6, 6, 15}, {3, 6, 15}, {1, 6, 15}, {1, 1, 3}}\n"
        "local n, i = 0, 0\n"
        "local counter = 0\n"
        "function setup(thread) counter = counter + 1; thread:set('tid', counter) end\n"
        "function init(args) i = (tid * 977) % #pts end\n"
        "function request()\n"
        "  n = n + 1; i = i % #pts + 1\n"
        "  local p, l = pts[i], levels[n % 4 + 1]\n"
        f'  local body = string.format(\'{{"code":"{run}-%d-%d","name":"bench","category":"gas",'
        '"geometry":{"type":"Point","coordinates":[%.7f,%.7f]},'
        '"assessment":{"method":"LEC","L":%d,"E":%d,"C":%d}}\', tid, n, p[1], p[2], l[1], l[2], l[3])\n'
        f"  return wrk.format('POST', '/risk-sources', {{['Content-Type'] = 'application/json',"
        f" ['Authorization'] = 'Bearer {key}'}}, body)\n"
        "end\n"
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=8767)
    args = parser.parse_args()
    ensure_tool("wrk", "wrk")
    url = scratch_copy(
        os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url, "gridrisk_bench_writes"
    )
    os.environ["GRIDRISK_RATE_LIMIT_WRITES"] = ""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            streets = import_streets(url, folder)
            with psycopg.connect(url, autocommit=True) as conn:
                key = create_key(conn, "bench", "operator")[1]
                conn.execute("VACUUM ANALYZE")
            spread = city_points(url, 4000)
            block, block_info = hot_block(url, 2000)
            runs: dict[str, dict] = {}
            with server(url, args.port, workers=args.workers) as base:
                # Warm the connections and plans, then measure.
                wrk(
                    f"{base}/risk-sources",
                    connections=2,
                    threads=1,
                    seconds=2,
                    script=post_script(spread, key, "W", folder / "warm.lua"),
                )
                plan = [
                    ("one_client", spread, 1, 1),
                    ("city_8_clients", spread, 8, 2),
                    ("hot_block_8_clients", block, 8, 2),
                ]
                for name, pts, connections, threads in plan:
                    script = post_script(pts, key, name[:4].upper(), folder / f"{name}.lua")
                    r = wrk(
                        f"{base}/risk-sources",
                        connections=connections,
                        threads=threads,
                        seconds=args.seconds,
                        script=script,
                    )
                    runs[name] = {
                        k: r[k] for k in ("rps", "p50_ms", "p90_ms", "p99_ms", "requests", "non_2xx")
                    }
                    print(name, runs[name], flush=True)
                map_runs = []
                for _ in range(3):
                    t = time.perf_counter()
                    r = httpx.get(f"{base}/risk-map/safety", timeout=60)
                    map_runs.append((time.perf_counter() - t, len(r.content), len(r.json()["features"])))
        with psycopg.connect(url) as conn:
            problems = len(verify(conn))
            sources = conn.execute("SELECT count(*) FROM risk_sources").fetchone()[0]
        result = {
            "benchmark": "risk_writes",
            "machine": machine(),
            "workers": args.workers,
            "seconds_per_run": args.seconds,
            "street_layer": streets,
            "hot_block": block_info,
            "runs": runs,
            "risk_sources_after": sources,
            "risk_map_safety": {
                "seconds": [round(t, 3) for t, _, _ in map_runs],
                "bytes": map_runs[0][1],
                "features": map_runs[0][2],
            },
            "verify_differences_after": problems,
        }
        print(save("risk_writes", result))
        print(json.dumps(result, ensure_ascii=False, indent=1))
    finally:
        drop(url)


if __name__ == "__main__":
    main()
