"""Reads with the primary only against primary + one streaming replica, two API nodes, one run.

Usage: .venv/bin/python bench/replicas.py [--seconds 10] [--rounds 2]
Needs the demo city (`make run` builds it) and starts a replica of the private cluster on
GRIDRISK_PG_PORT+2 if none runs (`make replica`). Two `gridrisk serve` nodes (one worker each) take
the load together — one wrk per node, as a proxy would split it — first with every read on the
primary, then with GRIDRISK_REPLICA_URLS, alternated for --rounds. Measured per setup: OGC-style
item pages (random bboxes), cold vector tiles (cache off: every tile rendered) and /cells/at, with
where the reads went, and the cost of read-your-writes: a write, then a read with its token.
On this 2-core machine the primary, the replica, both nodes and wrk share two cores: the replica
cannot add capacity here; the figures show that the path works and what it costs per request.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cells_at import lua_script, random_city_points  # noqa: E402
from common import ROOT, ensure_tool, loop_script, machine, save, server, wrk  # noqa: E402
from scale import cold_tile_paths  # noqa: E402

from gridrisk.api_keys import create_key  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402


def item_paths(points: list[tuple[float, float]], n: int) -> list[str]:
    """N item pages of risk sources in 1 km boxes around random points."""
    d = 0.005
    return [
        f"/ogc/collections/risk_sources/items?bbox={x - d:.5f},{y - d:.5f},{x + d:.5f},{y + d:.5f}&limit=50"
        for x, y in points[:n]
    ]


def both_nodes(bases: list[str], seconds: int, script: Path) -> dict:
    """wrk against every node at once (4 connections each); summed rate, worst p99."""
    results: list[dict] = [{} for _ in bases]

    def run(i: int) -> None:
        results[i] = wrk(f"{bases[i]}/", connections=4, threads=1, seconds=seconds, script=script)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {
        "rps": round(sum(r["rps"] for r in results)),
        "p50_ms": round(max(r["p50_ms"] for r in results), 2),
        "p99_ms": round(max(r["p99_ms"] for r in results), 2),
        "non_2xx": sum(r["non_2xx"] for r in results),
    }


def read_your_writes(base: str, key: str, n: int = 60) -> dict:
    """A write, then a read of it carrying the write's token: the pair's time, and who served the read."""
    pairs, served = [], {}
    with httpx.Client(base_url=base, timeout=10, headers={"Authorization": f"Bearer {key}"}) as c:
        for i in range(n):
            body = {
                "code": f"BENCH-RYW-{time.time_ns()}-{i}",
                "name": "bench",
                "category": "gas",
                "assessment": {"method": "LEC", "L": 1, "E": 1, "C": 1},
                "geometry": {"type": "Point", "coordinates": [118.79 + i * 1e-4, 32.05]},
            }
            started = time.perf_counter()
            r = c.post("/risk-sources", json=body)
            r.raise_for_status()
            got = c.get(
                f"/risk-sources/{r.json()['id']}", headers={"Gridrisk-LSN": r.headers.get("gridrisk-lsn", "")}
            )
            got.raise_for_status()
            pairs.append((time.perf_counter() - started) * 1000)
            who = got.headers.get("gridrisk-served-by", "primary").split(" ")[0]
            served[who] = served.get(who, 0) + 1
            c.delete(
                f"/risk-sources/{r.json()['id']}",
                headers={"If-Match": f'"{r.json()["properties"]["version"]}"'},
            )
    return {
        "p50_ms": round(statistics.median(pairs), 1),
        "p90_ms": round(sorted(pairs)[int(0.9 * n)], 1),
        "served": served,
    }


def replica_url(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{port}"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--ports", type=int, nargs=2, default=(8031, 8032))
    args = ap.parse_args()
    ensure_tool("wrk", "wrk")
    url = Settings().database_url
    primary_port = urlsplit(url).port or 5432
    rport = primary_port + 2
    env = {**os.environ, "GRIDRISK_PG_PORT": str(primary_port)}
    subprocess.run(
        ["bash", str(ROOT / "scripts/pgcluster.sh"), "replica-start", str(rport)], check=True, env=env
    )
    rurl = replica_url(url, rport)
    with psycopg.connect(url, autocommit=True) as conn:
        points = random_city_points(conn, 3000)
        key = create_key(conn, "bench-replicas", "operator")[1]
    out: dict = {"machine": machine(), "seconds": args.seconds, "rounds": []}
    with tempfile.TemporaryDirectory() as tmp:
        scripts = {
            "items": loop_script(item_paths(points, 1500), Path(tmp) / "items.lua"),
            "cold_tiles": loop_script(cold_tile_paths(points, 1500), Path(tmp) / "tiles.lua"),
            "cells_at": lua_script(points, Path(tmp) / "cells.lua"),
        }
        # Tiles uncached (every request renders); no rate limit (the load is one client).
        plain = {"GRIDRISK_TILE_CACHE_MB": "0", "GRIDRISK_RATE_LIMIT_HEAVY": ""}
        replicated = {**plain, "GRIDRISK_REPLICA_URLS": f'["{rurl}"]'}
        setups = {"primary only": plain, "primary + replica": replicated}
        for rnd in range(args.rounds):
            for name, extra in setups.items():
                row: dict = {"round": rnd + 1, "setup": name}
                with server(url, args.ports[0], env=extra) as a, server(url, args.ports[1], env=extra) as b:
                    bases = [a, b]
                    for what, script in scripts.items():
                        both_nodes(bases, 2, script)  # warm: connections, plans, the lookup index
                        row[what] = both_nodes(bases, args.seconds, script)
                    row["write_then_read"] = read_your_writes(a, key)
                    health = httpx.get(f"{a}/health").json().get("replication")
                    if health:
                        row["node_a_reads"] = {
                            "replica": health["replicas"][0]["reads"],
                            "primary": health["primary_reads"],
                        }
                print(row, flush=True)
                out["rounds"].append(row)
    print("saved", save("replicas", out))


if __name__ == "__main__":
    main()
