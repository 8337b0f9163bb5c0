"""Benchmark live events: the time from a write's commit to its cell_colour event reaching SSE clients.

Usage: .venv/bin/python bench/sse_latency.py [--n 50] [--subscribers 1,100] [--port 8766] [--keep]
Runs `gridrisk serve` on a scratch copy of the demo city in GRIDRISK_DATABASE_URL (CREATE DATABASE
... TEMPLATE, dropped afterwards), subscribes to /events, then performs N writes one at a time,
alternately inserting a red risk source into a blue comprehensive cell and lowering it to blue again:
- through SQL (psycopg): latency = event received − the moment COMMIT returned;
- through the API (POST /risk-sources, PATCH with If-Match), when it exists: latency from the
  response (the write is acknowledged, so committed) and from the request's start.
With several subscribers, "all" is the time until the last of them has the event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

RED = {"method": "LEC", "L": 6, "E": 6, "C": 15}  # D = 540 > 320
BLUE = {"method": "LEC", "L": 0.1, "E": 0.5, "C": 1}  # D = 0.05


def with_dbname(url: str, dbname: str) -> str:
    """URL with another database name (keyword form, which psycopg and `gridrisk serve` both accept)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)


def scratch_copy(source_url: str, name: str) -> str:
    """CREATE DATABASE NAME TEMPLATE <source>; retried while other sessions use the source."""
    source = psycopg.conninfo.conninfo_to_dict(source_url)["dbname"]
    deadline = time.monotonic() + 60
    with psycopg.connect(with_dbname(source_url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        while True:
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
                return with_dbname(source_url, name)
            except psycopg.errors.ObjectInUse:
                if time.monotonic() > deadline:
                    sys.exit(f"database {source} stays in use by other sessions; stop them (e.g. `make run`)")
                time.sleep(1)


def drop_database(url: str, name: str) -> None:
    with psycopg.connect(with_dbname(url, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def blue_cells(url: str, n: int) -> list[tuple[str, float, float]]:
    """N blue comprehensive cells spread over the city (fixed order): code and an inside point."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.code, ST_X(p), ST_Y(p) FROM (SELECT c.code, ST_PointOnSurface(c.geom) AS p FROM cells c"
            " JOIN cell_risk r ON r.cell_id = c.id WHERE c.layer = 'comprehensive' AND r.colour = 'blue'"
            " ORDER BY md5(c.code) LIMIT %s) c",
            (n,),
        ).fetchall()
    if len(rows) < n:
        sys.exit(f"only {len(rows)} blue comprehensive cells; the benchmark needs {n}")
    return [(code, float(x), float(y)) for code, x, y in rows]


class Subscriber:
    """One /events stream; notes when each (comprehensive code, new colour) event arrived."""

    def __init__(self, http: httpx.AsyncClient, base: str) -> None:
        self.http, self.base = http, base
        self.seen: dict[tuple[str, str], float] = {}
        self.changed = asyncio.Event()
        self.ready = asyncio.Event()
        self.events = 0

    async def run(self) -> None:
        async with self.http.stream("GET", self.base + "/events") as response:
            response.raise_for_status()
            kind, data = None, None
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data = line[5:].strip()
                elif line == "" and kind:
                    now = time.perf_counter()
                    if kind == "ready":
                        self.ready.set()
                    elif kind == "cell_colour":
                        self.events += 1
                        payload = json.loads(data)
                        if payload["layer"] == "comprehensive":
                            self.seen[(payload["code"], payload["new"])] = now
                            self.changed.set()
                    kind, data = None, None

    async def arrival(self, key: tuple[str, str], within: float = 10.0) -> float:
        async with asyncio.timeout(within):
            while key not in self.seen:
                self.changed.clear()
                await self.changed.wait()
        return self.seen[key]


def summary(values_s: list[float]) -> dict:
    ms = sorted(v * 1000 for v in values_s)
    if not ms:
        return {}
    pick = lambda q: ms[min(len(ms) - 1, max(0, round(q * len(ms)) - 1))]  # noqa: E731 (nearest rank)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p90_ms": round(pick(0.90), 2),
        "p99_ms": round(pick(0.99), 2),
        "max_ms": round(ms[-1], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


INSERT_SQL = (
    "INSERT INTO risk_sources (code, name, category, geom, method, l, e, c, created_by, updated_by)"
    " VALUES (%s, 'bench', 'gas', ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'LEC', 6, 6, 15, 'bench', 'bench')"
)
LOWER_SQL = "UPDATE risk_sources SET l = 0.1, e = 0.5, c = 1, version = version + 1 WHERE code = %s"


def _write(conn: psycopg.Connection, stmt: str, params: tuple) -> float:
    conn.execute(stmt, params)
    conn.commit()
    return time.perf_counter()


async def via_sql(url: str, subs: list[Subscriber], cells: list[tuple[str, float, float]], tag: str) -> dict:
    """Each cell: insert a red source (blue → red), commit, wait; lower it (red → blue), commit, wait."""
    first, every = [], []
    # The writes run in a thread: the commit time is read the moment COMMIT returns, not when this
    # event loop (busy reading the streams) would get round to resuming an async commit.
    with psycopg.connect(url) as conn:
        for i, (code, lon, lat) in enumerate(cells):
            for new, stmt, params in (
                ("red", INSERT_SQL, (f"BENCH-{tag}-{i}", lon, lat)),
                ("blue", LOWER_SQL, (f"BENCH-{tag}-{i}",)),
            ):
                committed = await asyncio.to_thread(_write, conn, stmt, params)
                arrivals = [await s.arrival((code, new)) for s in subs]
                first.append(arrivals[0] - committed)
                every.append(max(arrivals) - committed)
                await asyncio.sleep(0.05)  # one write at a time: nothing else in flight
    return {"commit_to_event": summary(first), "commit_to_all_subscribers": summary(every)}


async def via_api(
    base: str, key: str, subs: list[Subscriber], cells: list[tuple[str, float, float]], tag: str
):
    """The same writes through POST /risk-sources and PATCH /risk-sources/{id} (If-Match)."""
    from_ack, from_start, every = [], [], []
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=30) as http:

        async def timed(new: str, code: str, request) -> httpx.Response:
            start = time.perf_counter()
            r = await request
            acked = time.perf_counter()
            if r.status_code not in (200, 201):
                raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text[:300]}")
            arrivals = [await s.arrival((code, new)) for s in subs]
            from_ack.append(arrivals[0] - acked)
            from_start.append(arrivals[0] - start)
            every.append(max(arrivals) - acked)
            await asyncio.sleep(0.05)
            return r

        for i, (code, lon, lat) in enumerate(cells):
            body = {
                "code": f"BENCH-{tag}-{i}",
                "name": "bench",
                "category": "gas",
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "assessment": RED,
            }
            created = await timed("red", code, http.post("/risk-sources", json=body))
            patch = http.patch(
                f"/risk-sources/{created.json()['id']}",
                json={"assessment": BLUE},
                headers={"If-Match": created.headers["etag"]},
            )
            await timed("blue", code, patch)
    return {
        "ack_to_event": summary(from_ack),
        "request_start_to_event": summary(from_start),
        "ack_to_all_subscribers": summary(every),
        "note": "ack_to_event < 0: the event reached the subscriber before the writer got its response",
    }


async def api_available(base: str) -> bool:
    async with httpx.AsyncClient(base_url=base) as http:
        spec = (await http.get("/openapi.json")).json()
    return "post" in spec["paths"].get("/risk-sources", {})


async def measure(base: str, url: str, key: str, counts: list[int], cells) -> dict:
    use_api = await api_available(base)
    results: dict = {"api_available": use_api}
    chunk = len(cells) // len(counts) // 2
    limits = httpx.Limits(max_connections=max(counts) + 10, max_keepalive_connections=0)
    for k, count in enumerate(counts):
        mine = cells[2 * k * chunk : 2 * (k + 1) * chunk]
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=None), limits=limits) as http:
            subs = [Subscriber(http, base) for _ in range(count)]
            tasks = [asyncio.create_task(s.run()) for s in subs]
            async with asyncio.timeout(30):
                for s in subs:
                    await s.ready.wait()
            run = {"subscribers": count, "sql": await via_sql(url, subs, mine[:chunk], f"S{count}")}
            if use_api:
                run["api"] = await via_api(base, key, subs, mine[chunk:], f"A{count}")
            run["events_per_subscriber"] = subs[0].events
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        results[f"subscribers_{count}"] = run
        print(f"{count} subscriber(s): {json.dumps(run)}", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50, help="writes per mode (half inserts, half updates)")
    parser.add_argument("--subscribers", default="1,100", help="comma-separated subscriber counts")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    counts = [int(c) for c in args.subscribers.split(",")]
    source_url = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    with psycopg.connect(source_url) as conn:
        cells_by_layer = dict(conn.execute("SELECT layer, count(*) FROM cells GROUP BY layer").fetchall())
    if cells_by_layer.get("safety", 0) < 20_000:
        sys.exit(f"the full demo city is needed (found {cells_by_layer}); run `gridrisk demo ensure` first")
    name = f"bench_sse_{os.getpid()}"
    url = scratch_copy(source_url, name)
    try:
        with psycopg.connect(url) as conn:
            _, key = create_key(conn, "bench-sse", "admin")
        per_mode = (args.n + 1) // 2  # each cell takes an insert and an update
        cells = blue_cells(url, 2 * per_mode * len(counts))
        with server(url, args.port) as base:
            runs = asyncio.run(measure(base, url, key, counts, cells))
    finally:
        if not args.keep:
            drop_database(source_url, name)
    result = {
        "benchmark": "sse_latency",
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "cells": cells_by_layer,
        "writes_per_mode": 2 * per_mode,
        **runs,
    }
    print(save("sse_latency", result))
    for count in counts:
        run = result[f"subscribers_{count}"]
        line = f"{count:>4} subscriber(s) | SQL commit→event " + _fmt(run["sql"]["commit_to_event"])
        line += " | →all " + _fmt(run["sql"]["commit_to_all_subscribers"])
        if "api" in run:
            line += " | API ack→event " + _fmt(run["api"]["ack_to_event"])
            line += " | request→event " + _fmt(run["api"]["request_start_to_event"])
        print(line)


def _fmt(s: dict) -> str:
    return f"p50 {s['p50_ms']:.1f} p99 {s['p99_ms']:.1f} max {s['max_ms']:.1f} ms"


if __name__ == "__main__":
    main()
