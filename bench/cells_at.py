"""Benchmark GET /cells/at with random points over the full demo city, /livez as the ceiling.

Usage: .venv/bin/python bench/cells_at.py [--seconds 15] [--connections 8] [--workers 1]
Needs the full demo city in GRIDRISK_DATABASE_URL (`make run` or `gridrisk demo ensure` builds it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_tool, machine, save, server, wrk  # noqa: E402

from gridrisk.db.sql_files import sql  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402

N_POINTS = 20_000


def random_city_points(conn: psycopg.Connection, n: int, seed: float = 0.42) -> list[tuple[float, float]]:
    """N points spread over the city's area (uniform by area, from the district layer)."""
    conn.execute("SELECT setseed(%s)", (seed,))
    rows = conn.execute(
        "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), %s, 42))).geom AS g"
        " FROM cells WHERE layer = 'district') p",
        (n,),
    ).fetchall()
    return [(float(x), float(y)) for x, y in rows]


def lua_script(points: list[tuple[float, float]], path: Path) -> Path:
    """A wrk script that requests /cells/at for the points in turn (each thread its own offset)."""
    body = ",".join(f"{{{x:.7f},{y:.7f}}}" for x, y in points)
    path.write_text(
        f"local pts = {{{body}}}\n"
        "local i = 0\n"
        "function setup(thread) thread:set('offset', math.random(1, #pts)) end\n"
        "function init(args) i = offset or 1 end\n"
        "function request()\n"
        "  i = i % #pts + 1\n"
        "  local p = pts[i]\n"
        "  return wrk.format('GET', string.format('/cells/at?lon=%.7f&lat=%.7f', p[1], p[2]))\n"
        "end\n"
    )
    return path


def raw_postgis_rate(url: str, points: list[tuple[float, float]], seconds: float) -> dict:
    """The lookup SQL alone, one connection, prepared: what PostGIS does per point without HTTP."""
    with psycopg.connect(url) as conn:
        done, start = 0, time.perf_counter()
        query = sql("cells_at")
        while time.perf_counter() - start < seconds:
            x, y = points[done % len(points)]
            conn.execute(query, {"lons": [x], "lats": [y]}, prepare=True).fetchall()
            done += 1
        elapsed = time.perf_counter() - start
    return {
        "lookups_per_s_one_connection": round(done / elapsed, 1),
        "mean_ms": round(1000 * elapsed / done, 3),
    }


def pgbench_rate(url: str, seconds: int, connections: int) -> dict:
    """The same lookup driven by pgbench at CONNECTIONS clients (no Python, no HTTP)."""
    pgbench = ensure_tool("pgbench", "postgresql-client")
    script = Path("/tmp/gridrisk-bench-lookup.sql")
    script.write_text(
        "\\set i random(1, 20000)\n"
        "SELECT c.layer, c.code FROM bench_points b"
        " JOIN cell_pieces p ON p.geom && b.g AND ST_Intersects(p.geom, b.g)"
        " JOIN cells c ON c.id = p.cell_id WHERE b.id = :i;\n"
    )
    out = subprocess.run(
        [
            pgbench,
            "-n",
            "-M",
            "prepared",
            "-c",
            str(connections),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    tps = [line for line in out.splitlines() if line.startswith("tps")]
    return {"pgbench_tps": float(tps[-1].split("=")[1].split()[0]), "connections": connections}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    ensure_tool("wrk", "wrk")
    url = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    with psycopg.connect(url) as conn:
        counts = dict(conn.execute("SELECT layer, count(*) FROM cells GROUP BY layer").fetchall())
        if counts.get("safety", 0) < 20_000:
            sys.exit(f"the full demo city is needed (found {counts}); run `gridrisk demo ensure` first")
        points = random_city_points(conn, N_POINTS)
        conn.execute("DROP TABLE IF EXISTS bench_points")
        conn.execute("CREATE TABLE bench_points (id int PRIMARY KEY, g geometry(Point, 4326))")
        with conn.cursor().copy("COPY bench_points (id, g) FROM STDIN") as copy:
            for i, (x, y) in enumerate(points, 1):
                copy.write_row((i, f"SRID=4326;POINT({x} {y})"))
        conn.commit()
    script = lua_script(points, Path("/tmp/gridrisk-cells-at.lua"))
    with server(url, args.port, args.workers) as base:
        for _ in range(2):  # warm-up: pool connections, prepared statements, caches
            wrk(f"{base}/livez", seconds=2)
            wrk(f"{base}/cells/at", seconds=2, script=script)
        livez = wrk(f"{base}/livez", connections=args.connections, seconds=args.seconds)
        cells = wrk(f"{base}/cells/at", connections=args.connections, seconds=args.seconds, script=script)
    raw = raw_postgis_rate(url, points, seconds=5)
    pgb = pgbench_rate(url, seconds=10, connections=args.connections)
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_points")
    result = {
        "benchmark": "cells_at",
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "server_workers": args.workers,
        "cells": counts,
        "livez": livez,
        "cells_at": cells,
        "ratio_cells_at_over_livez": round(cells["rps"] / livez["rps"], 3),
        "raw_postgis": {**raw, **pgb},
    }
    print(save(f"cells_at_w{args.workers}", result))
    print(
        f"livez {livez['rps']:.0f} req/s p50 {livez['p50_ms']:.2f} ms p99 {livez['p99_ms']:.2f} ms | "
        f"cells/at {cells['rps']:.0f} req/s p50 {cells['p50_ms']:.2f} ms p99 {cells['p99_ms']:.2f} ms "
        f"(non-2xx {cells['non_2xx']}) | ratio {result['ratio_cells_at_over_livez']} | "
        f"raw lookup {raw['lookups_per_s_one_connection']}/s on one connection, "
        f"pgbench {pgb['pgbench_tps']} tps"
    )


if __name__ == "__main__":
    main()
