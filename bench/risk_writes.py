"""Single-write latency and concurrent write throughput of POST /risk-sources on the full demo city,
plus the time and size of GET /risk-map/safety (the whole 22,000-cell map).

Usage: .venv/bin/python bench/risk_writes.py [--writes 300] [--concurrency 8]
Runs on a scratch copy of the demo database (CREATE DATABASE … TEMPLATE), dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save, server  # noqa: E402

from gridrisk.api_keys import create_key  # noqa: E402
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


def points(url: str, n: int) -> list[tuple[float, float]]:
    with psycopg.connect(url) as conn:
        conn.execute("SELECT setseed(0.7)")
        return conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), %s, 7))).geom g"
            " FROM cells WHERE layer = 'district') p",
            (n,),
        ).fetchall()


def body(i: int, x: float, y: float) -> dict:
    lec = [(6, 6, 15), (3, 6, 15), (1, 6, 15), (1, 1, 3)][i % 4]
    return {
        "code": f"BENCH-{i:06d}",
        "name": f"bench source {i}",
        "category": "gas",
        "geometry": {"type": "Point", "coordinates": [x, y]},
        "assessment": {"method": "LEC", "L": lec[0], "E": lec[1], "C": lec[2]},
    }


async def sequential(base: str, key: str, pts, start: int) -> list[float]:
    lat = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
        for i, (x, y) in enumerate(pts):
            t = time.perf_counter()
            r = await c.post("/risk-sources", json=body(start + i, x, y))
            lat.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 201, r.text
    return lat


async def concurrent(base: str, key: str, pts, start: int, concurrency: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    queue = list(enumerate(pts, start))

    async def worker(c: httpx.AsyncClient) -> None:
        while queue:
            i, (x, y) = queue.pop()
            t = time.perf_counter()
            r = await c.post("/risk-sources", json=body(i, x, y))
            lat.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 201, r.text

    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        t = time.perf_counter()
        await asyncio.gather(*(worker(c) for _ in range(concurrency)))
        return time.perf_counter() - t, lat


def pct(values: list[float], p: float) -> float:
    return round(statistics.quantiles(values, n=100)[int(p) - 1], 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--port", type=int, default=8767)
    args = parser.parse_args()
    url = scratch_copy(
        os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url, "gridrisk_bench_writes"
    )
    try:
        with psycopg.connect(url) as conn:
            key = create_key(conn, "bench", "operator")[1]
        pts = points(url, 2 * args.writes)
        with server(url, args.port) as base:
            seq = asyncio.run(sequential(base, key, pts[: args.writes], 0))
            elapsed, conc = asyncio.run(
                concurrent(base, key, pts[args.writes :], args.writes, args.concurrency)
            )
            map_runs = []
            for _ in range(3):
                t = time.perf_counter()
                r = httpx.get(f"{base}/risk-map/safety", timeout=60)
                map_runs.append((time.perf_counter() - t, len(r.content), len(r.json()["features"])))
        with psycopg.connect(url) as conn:
            from gridrisk.services.risk_map import verify

            problems = len(verify(conn))
        result = {
            "benchmark": "risk_writes",
            "machine": machine(),
            "single_write_ms": {
                "p50": pct(seq, 50),
                "p99": pct(seq, 99),
                "mean": round(statistics.mean(seq), 2),
            },
            "concurrent": {
                "concurrency": args.concurrency,
                "writes": len(conc),
                "writes_per_s": round(len(conc) / elapsed, 1),
                "p50_ms": pct(conc, 50),
                "p99_ms": pct(conc, 99),
            },
            "risk_map_safety": {
                "seconds": [round(t, 3) for t, _, _ in map_runs],
                "bytes": map_runs[0][1],
                "features": map_runs[0][2],
            },
            "verify_differences_after": problems,
        }
        print(save("risk_writes", result))
        print(result)
    finally:
        drop(url)


if __name__ == "__main__":
    main()
