"""Benchmark the shelters: GET /shelters/nearest under wrk (with /livez as the ceiling), the coverage
analysis of each grid, and the throughput of concurrent check-ins (POST /shelters/{id}/occupancy).

Usage: .venv/bin/python bench/shelters.py [--seconds 15] [--connections 8] [--keep]
Runs on a scratch copy of the demo database (CREATE DATABASE … TEMPLATE) with the demo shelters
built into it (dropped afterwards unless --keep). Needs the full demo city (`gridrisk demo ensure`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cells_at import wait_for_tiles  # noqa: E402
from common import ensure_tool, interleaved, machine, save, server, wrk  # noqa: E402

from gridrisk.api_keys import create_key  # noqa: E402
from gridrisk.db.sql_files import sql  # noqa: E402
from gridrisk.demo.shelters import build_demo_shelters  # noqa: E402
from gridrisk.services.shelters import coverage  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402

SCRATCH = "gridrisk_bench_shelters"
N_POINTS = 20_000
N_CHECKIN_SHELTERS = 50


def scratch_copy(url: str, name: str) -> str:
    """A copy of URL's database named NAME (retrying while other sessions hold the template)."""
    source = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for attempt in range(30):
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 29:
                    sys.exit(f"'{source}' stays in use by other sessions; stop them and run again")
                time.sleep(1)
    return psycopg.conninfo.make_conninfo(url, dbname=name)


def drop(url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def city_points(conn: psycopg.Connection, n: int) -> list[tuple[float, float]]:
    """N points uniform over the city's area (the same every run)."""
    rows = conn.execute(
        "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), %s, 42))).geom AS g"
        " FROM cells WHERE layer = 'district') p",
        (n,),
    ).fetchall()
    return [(float(x), float(y)) for x, y in rows]


def nearest_script(points: list[tuple[float, float]], path: Path) -> Path:
    """A wrk script requesting /shelters/nearest for the points in turn (each thread its own offset)."""
    body = ",".join(f"{{{x:.6f},{y:.6f}}}" for x, y in points)
    path.write_text(
        f"local pts = {{{body}}}\n"
        "local i = 0\n"
        "function setup(thread) thread:set('offset', math.random(1, #pts)) end\n"
        "function init(args) i = offset or 1 end\n"
        "function request()\n"
        "  i = i % #pts + 1\n"
        "  local p = pts[i]\n"
        "  local path = string.format('/shelters/nearest?lon=%.6f&lat=%.6f&limit=5', p[1], p[2])\n"
        "  return wrk.format('GET', path)\n"
        "end\n"
    )
    return path


def checkin_script(ids: list[int], key: str, path: Path) -> Path:
    """A wrk script checking one person in at a time, spread over the shelters IDS in turn."""
    path.write_text(
        f"local ids = {{{','.join(map(str, ids))}}}\n"
        "local i = 0\n"
        "function setup(thread) thread:set('offset', math.random(1, #ids)) end\n"
        "function init(args) i = offset or 1 end\n"
        "function request()\n"
        "  i = i % #ids + 1\n"
        "  return wrk.format('POST', '/shelters/' .. ids[i] .. '/occupancy',\n"
        f"    {{['Authorization'] = 'Bearer {key}', ['Content-Type'] = 'application/json'}},\n"
        "    '{\"delta\": 1}')\n"
        "end\n"
    )
    return path


def raw_nearest_rate(url: str, points: list[tuple[float, float]], seconds: float) -> dict:
    """The nearest statement alone on one connection, prepared as the service runs it."""
    query = sql("shelter_nearest")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = force_generic_plan")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN " + query,
                {
                    "lon": points[0][0],
                    "lat": points[0][1],
                    "limit": 5,
                    "candidates": 20,
                    "class": None,
                    "statuses": ["open", "standby"],
                    "min_free": 0,
                },
            ).fetchall()
        )
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            x, y = points[done % len(points)]
            params = {
                "lon": x,
                "lat": y,
                "limit": 5,
                "candidates": 20,
                "class": None,
                "statuses": ["open", "standby"],
                "min_free": 0,
            }
            conn.execute(query, params, prepare=True).fetchone()
            done += 1
        elapsed = time.perf_counter() - start
    return {
        "queries_per_s_one_connection": round(done / elapsed, 1),
        "mean_ms": round(1000 * elapsed / done, 3),
        "index_scan_on_ix_shelters_geog": "Index Scan using ix_shelters_geog" in plan,
    }


def coverage_times(url: str, base: str, repeat: int) -> dict:
    """The coverage report per grid (sync function, as the CLI runs it) and over HTTP."""
    out: dict = {}
    with psycopg.connect(url) as conn:
        layers = [r[0] for r in conn.execute("SELECT name FROM layers WHERE kind = 'grid' ORDER BY name")]
        for layer in layers:
            runs = []
            for _ in range(repeat):
                t = time.perf_counter()
                report = coverage(conn, layer)
                runs.append(time.perf_counter() - t)
            city = report["city"]
            out[layer] = {
                "cells": city["cells"],
                "function_s": {"min": round(min(runs), 3), "median": round(statistics.median(runs), 3)},
                "city": {
                    k: city[k] for k in ("population", "capacity", "ratio", "shortfall", "cells_unreached")
                },
            }
    for layer in out:
        for path, key in (
            ("/shelters/coverage", "http_json"),
            ("/shelters/coverage.geojson", "http_geojson"),
        ):
            runs, size = [], 0
            for _ in range(repeat):
                t = time.perf_counter()
                r = httpx.get(f"{base}{path}", params={"layer": layer}, timeout=120)
                runs.append(time.perf_counter() - t)
                size = len(r.content)
                assert r.status_code == 200, r.text[:500]
            out[layer][key] = {"median_s": round(statistics.median(runs), 3), "bytes": size}
    return out


def checkins(url: str, base: str, key: str, seconds: int, connections: int) -> dict:
    """Check-ins under wrk: spread over many shelters, and all on one (a single hot row)."""
    with psycopg.connect(url) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM shelters WHERE class = 'emergency' AND status = 'standby'"
                " ORDER BY code LIMIT %s",
                (N_CHECKIN_SHELTERS,),
            )
        ]
        # Open them with room to spare: the run measures the write path, not 409s.
        conn.execute(
            "UPDATE shelters SET status = 'open', capacity = 10000000, version = version + 1"
            " WHERE id = ANY(%s)",
            (ids,),
        )
    out = {}
    for name, targets in (("spread_over_50", ids), ("one_hot_shelter", ids[:1])):
        with psycopg.connect(url) as conn:
            before = conn.execute(
                "SELECT sum(occupancy) FROM shelters WHERE id = ANY(%s)", (targets,)
            ).fetchone()[0]
        script = checkin_script(targets, key, Path(f"/tmp/gridrisk-checkin-{name}.lua"))
        result = wrk(f"{base}/shelters", connections=connections, seconds=seconds, script=script)
        time.sleep(0.5)  # requests in flight when wrk stopped still commit
        with psycopg.connect(url) as conn:
            after = conn.execute(
                "SELECT sum(occupancy) FROM shelters WHERE id = ANY(%s)", (targets,)
            ).fetchone()[0]
        ok = result["requests"] - result["non_2xx"]
        result["persons_counted_by_db"] = int(after - before)
        result["successes_seen_by_wrk"] = ok
        # The database may hold up to `connections` more: requests wrk abandoned at the deadline.
        result["consistent"] = 0 <= result["persons_counted_by_db"] - ok <= connections
        out[name] = result
    return out


def nearest_during_checkins(
    url: str, base: str, key: str, script: Path, seconds: int, connections: int
) -> dict:
    """/shelters/nearest under wrk while check-ins run beside it: every check-in changes a
    shelter's free places, which the next answer must show."""
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM shelters WHERE capacity = 10000000 ORDER BY id")]
    checkin = checkin_script(ids, key, Path("/tmp/gridrisk-checkin-mixed.lua"))
    for _ in range(2):
        wrk(f"{base}/shelters/nearest", seconds=2, script=script)
    before = httpx.get(f"{base}/health", timeout=10).json()["lookup"]["shelters"]
    writes: dict = {}
    thread = threading.Thread(
        target=lambda: writes.update(
            wrk(f"{base}/shelters", connections=2, threads=1, seconds=seconds, script=checkin)
        )
    )
    thread.start()
    nearest = wrk(f"{base}/shelters/nearest", connections=connections, seconds=seconds, script=script)
    thread.join()
    after = httpx.get(f"{base}/health", timeout=10).json()["lookup"]["shelters"]
    return {
        "nearest": nearest,
        "checkins": writes,
        "shelter_loads": after["loads"] - before["loads"],
        "fallbacks": after["fallbacks"] - before["fallbacks"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=8768)
    parser.add_argument("--repeat", type=int, default=5, help="coverage runs per layer")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    ensure_tool("wrk", "wrk")
    source = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    with psycopg.connect(source) as conn:
        n = conn.execute("SELECT count(*) FROM cells WHERE layer = 'comprehensive'").fetchone()[0]
    if n < 12_000:
        sys.exit(f"the full demo city is needed (comprehensive: {n} cells); run `gridrisk demo ensure` first")
    url = scratch_copy(source, SCRATCH)
    try:
        with psycopg.connect(url) as conn:
            t = time.perf_counter()
            demo = build_demo_shelters(conn, seed=42)
            demo_s = time.perf_counter() - t
            conn.execute("ANALYZE shelters")
            key = create_key(conn, "bench", "worker")[1]
            points = city_points(conn, N_POINTS)
            counts = dict(conn.execute("SELECT class, count(*) FROM shelters GROUP BY class").fetchall())
        script = nearest_script(points, Path("/tmp/gridrisk-nearest.lua"))
        with server(url, args.port) as base:
            wait_for_tiles(base)
            for _ in range(2):  # warm-up: pool connections, prepared statements, caches
                wrk(f"{base}/livez", seconds=2)
                wrk(f"{base}/shelters/nearest", seconds=2, script=script)
            # Interleaved rounds: the ratio is taken on the same machine weather for both.
            rounds = max(1, args.seconds // 3)
            both = interleaved(
                {
                    "livez": {"url": f"{base}/livez"},
                    "nearest": {"url": f"{base}/shelters/nearest", "script": script},
                },
                rounds=rounds,
                seconds=max(1, args.seconds // rounds),
                connections=args.connections,
            )
            livez, nearest = both["livez"], both["nearest"]
            memory = httpx.get(f"{base}/health", timeout=10).json().get("lookup", {}).get("shelters")
            print("nearest from memory:", memory)
            cov = coverage_times(url, base, args.repeat)
        # Writes on a server whose per-key write limit is lifted: the run measures the write path,
        # not the limiter (600 a minute per key turned 99% of the check-ins into 429s).
        with server(url, args.port + 1, env={"GRIDRISK_RATE_LIMIT_WRITES": "1000000/minute"}) as base:
            wait_for_tiles(base)  # built in a thread after start: not measured beside the requests
            checkin = checkins(url, base, key, args.seconds, args.connections)
            mixed = nearest_during_checkins(url, base, key, script, args.seconds, args.connections)
        raw = raw_nearest_rate(url, points, seconds=5)
    finally:
        if not args.keep:
            drop(url)
    result = {
        "benchmark": "shelters",
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "shelters": counts,
        "demo_build_s": round(demo_s, 2),
        "demo": demo,
        "livez": livez,
        "nearest": nearest,
        "ratio_nearest_over_livez": round(nearest["rps"] / livez["rps"], 3),
        "nearest_from_memory": memory,
        "raw_nearest": raw,
        "coverage": cov,
        "checkins": checkin,
        "nearest_during_checkins": mixed,
    }
    print(save("shelters", result))
    c = cov.get("comprehensive", {})
    print(
        f"livez {livez['rps']:.0f} req/s p99 {livez['p99_ms']:.2f} ms | nearest {nearest['rps']:.0f} req/s "
        f"p50 {nearest['p50_ms']:.2f} ms p99 {nearest['p99_ms']:.2f} ms (non-2xx {nearest['non_2xx']}) | "
        f"ratio {result['ratio_nearest_over_livez']} (from memory: {memory}) | "
        f"raw nearest {raw['queries_per_s_one_connection']}/s "
        f"on one connection (index scan: {raw['index_scan_on_ix_shelters_geog']})"
    )
    for layer, v in cov.items():
        print(
            f"coverage {layer} ({v['cells']} cells): function median {v['function_s']['median']} s, "
            f"HTTP JSON {v['http_json']['median_s']} s ({v['http_json']['bytes']:,} B), "
            f"GeoJSON {v['http_geojson']['median_s']} s ({v['http_geojson']['bytes']:,} B)"
        )
    if c:
        print(f"comprehensive city totals: {c['city']}")
    for name, r in checkin.items():
        print(
            f"check-ins {name}: {r['rps']:.0f} req/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms, "
            f"non-2xx {r['non_2xx']}, db counted {r['persons_counted_by_db']} "
            f"vs wrk {r['successes_seen_by_wrk']} "
            f"(consistent: {r['consistent']})"
        )

    m = mixed
    print(
        f"nearest during check-ins: {m['nearest']['rps']:.0f} req/s p50 {m['nearest']['p50_ms']:.2f} ms "
        f"p99 {m['nearest']['p99_ms']:.2f} ms beside {m['checkins']['rps']:.0f} check-ins/s "
        f"(non-2xx {m['checkins']['non_2xx']}); {m['shelter_loads']} shelter reloads, "
        f"{m['fallbacks']} answers from the database"
    )


if __name__ == "__main__":
    main()
