"""Benchmark /cells/at (GET, and POST with 10,000 points) over the full demo city, /livez as the ceiling.

Usage: .venv/bin/python bench/cells_at.py [--seconds 15] [--connections 8] [--workers 1]
Needs the full demo city in GRIDRISK_DATABASE_URL (`make run` or `gridrisk demo ensure` builds it).
Also measured: the lookup index's memory in a worker (a process that loads it alone), the server
worker's RSS after the run, and database statements per request (the outbox reads that keep the
index current; the database answered every lookup before it).
`--memory` only prints the index's memory (it is how the benchmark measures it, in a fresh process).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
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


def post_script(points: list[tuple[float, float]], path: Path) -> Path:
    """A wrk script that POSTs the same trace of POINTS (a GPS trace's worth: 10,000) every time."""
    body = json.dumps({"points": [[round(x, 7), round(y, 7)] for x, y in points]})
    # A long string of level 1 ([=[ … ]=]): the JSON itself holds "]]".
    path.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\nwrk.body = [=[{body}]=]\n'
    )
    return path


def index_memory(url: str) -> dict:
    """RSS a worker grows by when its lookup index loads (this process: imports first, then the load)."""
    from gridrisk.db.pool import make_pool, open_pool
    from gridrisk.events.outbox import OutboxReader
    from gridrisk.lookup.state import LookupService

    def rss_mb() -> float:
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    async def load() -> dict:
        pool = make_pool(Settings(database_url=url))
        await open_pool(pool)
        await pool.wait()
        reader = OutboxReader(pool)
        before = rss_mb()
        started = time.perf_counter()
        service = LookupService(pool, reader)
        reader.start()
        while not service.usable():  # noqa: ASYNC110 (a state to poll, not an event to await)
            await asyncio.sleep(0.02)
        seconds = time.perf_counter() - started
        after = rss_mb()
        stats = service.stats()
        await reader.aclose()
        await pool.close()
        return {
            "index_mb": round(after - before, 1),
            "process_rss_mb": round(after, 1),
            "load_s": round(seconds, 2),
            **{k: stats[k] for k in ("layers", "cells", "pieces", "vertices")},
        }

    return asyncio.run(load())


def wait_for_tiles(base: str, seconds: float = 120.0) -> dict | None:
    """Wait until /health says the lookup answers from memory with its tiles (unless they are off)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        lookup = httpx.get(f"{base}/health", timeout=5).json().get("lookup") or {}
        if lookup.get("memory") and (lookup.get("tiles") or Settings().lookup_tile_m == 0):
            return lookup.get("tiles")
        time.sleep(0.2)
    sys.exit(f"the lookup index and its tiles were not ready within {seconds:.0f} s")


def _server_pids(port: int) -> list[str]:
    """The `gridrisk serve --port PORT` processes (the worker, and its parent with workers > 1)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmd and str(port).encode() in cmd:
            pids.append(pid)
    return pids


def server_rss_mb(port: int) -> float | None:
    """VmRSS of the server's processes, in MB."""
    total = None
    for pid in _server_pids(port):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total = (total or 0.0) + int(line.split()[1]) / 1024
    return None if total is None else round(total, 1)


def server_cpu_s(port: int) -> float:
    """CPU seconds (user + system) the server's processes have used so far."""
    ticks = 0
    for pid in _server_pids(port):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def measured(port: int, url: str, **kw) -> dict:
    """wrk against URL, with the server's CPU time per request (less at the mercy of other load)."""
    cpu = server_cpu_s(port)
    result = wrk(url, **kw)
    result["server_cpu_us_per_request"] = round(1e6 * (server_cpu_s(port) - cpu) / max(result["requests"], 1))
    return result


def statements(url: str) -> int:
    """Transactions this database has committed so far (reads run in autocommit: one per statement)."""
    # Backends publish their counts when idle, at most once a second: let the last ones land.
    time.sleep(1.5)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


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
    parser.add_argument("--memory", action="store_true", help="only print the lookup index's memory")
    args = parser.parse_args()
    url = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    if args.memory:
        print(json.dumps(index_memory(url)))
        return
    ensure_tool("wrk", "wrk")
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
    trace = post_script(points[:10_000], Path("/tmp/gridrisk-cells-at-post.lua"))
    memory = json.loads(
        subprocess.run(
            [sys.executable, __file__, "--memory"], check=True, capture_output=True, text=True
        ).stdout.splitlines()[-1]
    )
    with server(url, args.port, args.workers) as base:
        wait_for_tiles(base)
        for _ in range(2):  # warm-up: pool connections, prepared statements, caches, the index
            wrk(f"{base}/livez", seconds=2)
            wrk(f"{base}/cells/at", seconds=2, script=script)
        livez = measured(args.port, f"{base}/livez", connections=args.connections, seconds=args.seconds)
        before = statements(url)
        cells = measured(
            args.port, f"{base}/cells/at", connections=args.connections, seconds=args.seconds, script=script
        )
        cells["db_statements_per_request"] = round((statements(url) - before) / max(cells["requests"], 1), 3)
        wrk(f"{base}/cells/at", connections=2, seconds=2, script=trace)
        post = wrk(f"{base}/cells/at", connections=2, threads=2, seconds=args.seconds, script=trace)
        post["points_per_s"] = round(post["rps"] * 10_000)
        rss = server_rss_mb(args.port)
    raw = raw_postgis_rate(url, points, seconds=5)
    with psycopg.connect(url) as conn:  # the same trace straight from PostGIS, for reference
        started = time.perf_counter()
        conn.execute(
            sql("cells_at"),
            {"lons": [p[0] for p in points[:10_000]], "lats": [p[1] for p in points[:10_000]]},
        )
        postgis_trace_s = round(time.perf_counter() - started, 3)
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
        "ratio_of_server_cpu_per_request": round(
            livez["server_cpu_us_per_request"] / max(cells["server_cpu_us_per_request"], 1), 3
        ),
        "post_10000_points": post,
        "index_memory": memory,
        "server_rss_mb": rss,
        "raw_postgis": {**raw, **pgb, "trace_10000_points_s": postgis_trace_s},
    }
    print(save(f"cells_at_w{args.workers}", result))
    print(
        f"livez {livez['rps']:.0f} req/s p50 {livez['p50_ms']:.2f} ms p99 {livez['p99_ms']:.2f} ms | "
        f"cells/at {cells['rps']:.0f} req/s p50 {cells['p50_ms']:.2f} ms p99 {cells['p99_ms']:.2f} ms "
        f"(non-2xx {cells['non_2xx']}) | ratio {result['ratio_cells_at_over_livez']} | "
        f"raw lookup {raw['lookups_per_s_one_connection']}/s on one connection, "
        f"pgbench {pgb['pgbench_tps']} tps\n"
        f"server CPU per request: livez {livez['server_cpu_us_per_request']} µs, "
        f"cells/at {cells['server_cpu_us_per_request']} µs | "
        f"db statements per cells/at request {cells['db_statements_per_request']} | "
        f"POST 10,000 points {post['rps']:.1f} req/s ({post['points_per_s']} points/s) "
        f"p50 {post['p50_ms']:.0f} ms (non-2xx {post['non_2xx']}) "
        f"p99 {post['p99_ms']:.0f} ms (PostGIS alone: {postgis_trace_s} s) | index {memory['index_mb']} MB "
        f"({memory['cells']} cells, {memory['pieces']} pieces, loaded in {memory['load_s']} s), "
        f"server RSS {rss} MB"
    )


if __name__ == "__main__":
    main()
