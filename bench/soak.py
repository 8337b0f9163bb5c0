"""A soak: ten minutes of a crisis's mixed load against one worker, watching memory, descriptors and p99.

Open-loop load (requests start on a schedule, whatever the server's pace, so a slow server shows
as latency, not as a politely lower rate), on a scratch copy of the demo city:
  lookups      GET /cells/at at random points                      --lookups per second
  nearest      GET /shelters/nearest                               a fifth of the lookup rate
  tiles        GET /tiles/safety/z/x/y.mvt over central Nanjing    --tiles per second
  maps         GET /risk-map/safety (13 MB, read at full speed)    one every --map-every seconds
  writes       POST /risk-sources then PATCH it (If-Match)         --writes per second
  SSE          --sse clients following /events for the whole run
  slow readers --slow clients that fetch the whole map at 64 KiB/s, over and over
Every 10 s it samples the server's RSS and open file descriptors. The result (error rate, p50/p99
per endpoint, memory and descriptors over time) goes to bench/results/soak.json.

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--lookups 100] [--tiles 20] [--writes 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save, server  # noqa: E402
from risk_writes import body, drop, points, scratch_copy  # noqa: E402

from gridrisk.api_keys import create_key  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402

CENTRE_TILES = [(14, x, y) for x in range(13596, 13602) for y in range(6648, 6654)]  # 新街口 and around


class Stats:
    """Latencies and outcomes per endpoint."""

    def __init__(self) -> None:
        self.ms: dict[str, list[float]] = defaultdict(list)
        self.status: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, name: str, started: float, status: int | str) -> None:
        self.ms[name].append((time.perf_counter() - started) * 1000)
        self.status[name][str(status)] += 1

    def summary(self) -> dict:
        out = {}
        for name, values in sorted(self.ms.items()):
            total = sum(self.status[name].values())
            errors = sum(n for s, n in self.status[name].items() if not s.startswith(("2", "3")))
            q = statistics.quantiles(values, n=100) if len(values) > 1 else [values[0]] * 99
            out[name] = {
                "requests": total,
                "error_rate": round(errors / total, 5),
                "statuses": dict(self.status[name]),
                "p50_ms": round(q[49], 1),
                "p99_ms": round(q[98], 1),
                "max_ms": round(max(values), 1),
            }
        return out


async def paced(rate: float, until: float, make) -> None:
    """Start make() RATE times a second until UNTIL, without waiting for the previous ones."""
    if rate <= 0:
        return
    tasks: set[asyncio.Task] = set()
    step, nxt = 1.0 / rate, time.monotonic()
    while nxt < until:
        task = asyncio.create_task(make())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        nxt += step
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks, timeout=60)


async def get(http: httpx.AsyncClient, stats: Stats, name: str, url: str) -> None:
    started = time.perf_counter()
    try:
        response = await http.get(url)
        stats.add(name, started, response.status_code)
    except httpx.HTTPError as exc:
        stats.add(name, started, type(exc).__name__)


async def write(http: httpx.AsyncClient, stats: Stats, key: str, pts, counter) -> None:
    i = next(counter)
    x, y = pts[i % len(pts)]
    auth = {"Authorization": f"Bearer {key}"}
    started = time.perf_counter()
    try:
        created = await http.post("/risk-sources", json=body(i, x, y), headers=auth)
        stats.add("POST /risk-sources", started, created.status_code)
        if created.status_code == 201:
            started = time.perf_counter()
            patched = await http.patch(
                created.headers["location"],
                json={"name": f"浸泡测试 {i}"},
                headers={**auth, "If-Match": created.headers["etag"]},
            )
            stats.add("PATCH /risk-sources/{id}", started, patched.status_code)
    except httpx.HTTPError as exc:
        stats.add("POST /risk-sources", started, type(exc).__name__)


async def sse_client(base: str, until: float, received: list[int]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(10, read=None)) as http:
        try:
            # The stream never ends by itself: the run's end cuts it, whether or not a line arrives.
            async with asyncio.timeout(max(0.0, until - time.monotonic())):
                async with http.stream("GET", "/events", params={"kinds": "cell_colour"}) as response:
                    async for line in response.aiter_lines():
                        if line.startswith("id:"):
                            received[0] += 1
        except TimeoutError:
            return
        except httpx.HTTPError:
            received[1] += 1


async def slow_reader(base: str, until: float, stats: Stats) -> None:
    """Fetch the whole map at 64 KiB/s, again and again: a phone on a bad network."""
    parts = urlsplit(base)
    while time.monotonic() < until:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(
            f"GET /risk-map/safety HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status = (await reader.readline()).split(b" ")[1].decode()
        while time.monotonic() < until:
            try:
                async with asyncio.timeout(max(0.1, until - time.monotonic())):
                    chunk = await reader.read(64 * 1024)
            except TimeoutError:
                break
            if not chunk:
                break
            await asyncio.sleep(1.0)
        stats.add("slow GET /risk-map/safety", started, status)
        writer.close()


def sample(pid: int) -> dict:
    """RSS (MiB) and open descriptors of PID and its children (the workers)."""
    pids = [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    rss = fds = 0
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1])
        fds += len(os.listdir(f"/proc/{p}/fd"))
    return {"rss_mib": round(rss / 1024, 1), "fds": fds}


def server_pid(port: int) -> int:
    """The pid of the process listening on PORT (the uvicorn master)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
            inode = fields[9]
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(
                os.readlink(f"/proc/{p}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{p}/fd")
            ):
                return int(p)
        except OSError:
            continue
    raise RuntimeError(f"no process listens on {port}")


async def soak(base: str, pid: int, args, key: str, pts) -> dict:
    stats = Stats()
    until = time.monotonic() + args.minutes * 60
    samples: list[dict] = []
    sse = [0, 0]
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:

        async def sampler() -> None:
            started = time.monotonic()
            while time.monotonic() < until:
                samples.append({"t_s": round(time.monotonic() - started), **sample(pid)})
                await asyncio.sleep(10)

        def lookup():
            x, y = random.choice(pts)
            return get(http, stats, "GET /cells/at", f"/cells/at?lon={x}&lat={y}")

        def nearest():
            x, y = random.choice(pts)
            return get(http, stats, "GET /shelters/nearest", f"/shelters/nearest?lon={x}&lat={y}")

        def tile():
            z, x, y = random.choice(CENTRE_TILES)
            return get(http, stats, "GET /tiles/safety", f"/tiles/safety/{z}/{x}/{y}.mvt")

        def whole_map():
            return get(http, stats, "GET /risk-map/safety", "/risk-map/safety")

        await asyncio.gather(
            sampler(),
            paced(args.lookups, until, lookup),
            paced(args.lookups / 5, until, nearest),
            paced(args.tiles, until, tile),
            paced(
                1 / args.map_every,
                until,
                lambda: get(http, stats, "GET /risk-map/safety", "/risk-map/safety"),
            ),
            paced(args.writes, until, lambda: write(http, stats, key, pts, counter)),
            *(sse_client(base, until, sse) for _ in range(args.sse)),
            *(slow_reader(base, until, stats) for _ in range(args.slow)),
        )
    samples.append({"t_s": round(args.minutes * 60), **sample(pid)})
    return {
        "endpoints": stats.summary(),
        "samples": samples,
        "sse_events_received": sse[0],
        "sse_errors": sse[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--lookups", type=float, default=100, help="cells/at per second")
    parser.add_argument("--tiles", type=float, default=20, help="tiles per second")
    parser.add_argument("--writes", type=float, default=4, help="create+update pairs per second")
    parser.add_argument("--map-every", type=float, default=5, help="seconds between whole-map downloads")
    parser.add_argument("--sse", type=int, default=50, help="SSE clients")
    parser.add_argument("--slow", type=int, default=5, help="slow readers of the whole map")
    parser.add_argument("--port", type=int, default=8771)
    args = parser.parse_args()

    url = scratch_copy(Settings().database_url, "gridrisk_bench_soak")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            key = create_key(conn, "soak", "operator")[1]
        pts = points(url, 2000)
        with server(url, args.port) as base:
            pid = server_pid(args.port)
            print(f"soaking {base} (pid {pid}) for {args.minutes:g} min…", file=sys.stderr)
            result = asyncio.run(soak(base, pid, args, key, pts))
    finally:
        drop(url)
    rss = [s["rss_mib"] for s in result["samples"]]
    fds = [s["fds"] for s in result["samples"]]
    result |= {
        "machine": machine(),
        "args": vars(args),
        "rss_mib": {"first": rss[0], "max": max(rss), "last": rss[-1]},
        "fds": {"first": fds[0], "max": max(fds), "last": fds[-1]},
    }
    path = save("soak", result)
    for name, figures in result["endpoints"].items():
        print(
            f"{name:32} {figures['requests']:>7} req  err {figures['error_rate']:.4f}"
            f"  p50 {figures['p50_ms']:>7.1f} ms  p99 {figures['p99_ms']:>8.1f} ms"
        )
    print(f"RSS MiB {result['rss_mib']}  fds {result['fds']}  SSE events {result['sse_events_received']}")
    print(f"-> {path}")


if __name__ == "__main__":
    main()
