"""Map images: how long a PNG of the four-colour map takes, end to end over HTTP.

Usage: .venv/bin/python bench/map_image.py [--repeat 5] [--port 8796]
On the demo database (read only; the heavy-read rate limit off): the whole city's safety grid
(22,000 cells) and comprehensive grid at 1600×1200, one district at 1600×1200, and a district-wide
red rainstorm's picture (posted, drawn, then deleted with its orders). Medians of REPEAT requests
after one warm-up.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save, server  # noqa: E402

from gridrisk.api_keys import create_key  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402


def timed(client: httpx.Client, path: str, repeat: int) -> dict:
    client.get(path).raise_for_status()  # warm-up
    seconds, size = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        r = client.get(path)
        r.raise_for_status()
        seconds.append(time.perf_counter() - t)
        size = len(r.content)
    return {"path": path, "median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
            "bytes": size}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--port", type=int, default=8796)
    args = parser.parse_args()
    url = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    os.environ["GRIDRISK_RATE_LIMIT_HEAVY"] = ""
    os.environ["GRIDRISK_RATE_LIMIT_WRITES"] = ""
    with psycopg.connect(url, autocommit=True) as conn:
        key_id, key = create_key(conn, "bench-map-image", "operator")
    results = []
    warning_id = None
    try:
        with server(url, args.port) as base, httpx.Client(base_url=base, timeout=60) as client:
            for path in ("/risk-map/safety.png", "/risk-map/comprehensive.png",
                         "/risk-map/safety.png?district=320115"):  # fmt: skip
                results.append(timed(client, path, args.repeat))
                print(results[-1], flush=True)
            now = datetime.now(UTC)
            body = {
                "identifier": "BENCH-MAP-IMAGE",
                "hazard_type": "rainstorm",
                "level": "red",
                "valid_from": (now - timedelta(minutes=5)).isoformat(),
                "valid_until": (now + timedelta(hours=2)).isoformat(),
                "headline": "江宁区暴雨红色预警（基准测试）",
                "area": {"districts": ["320115"]},
            }
            r = client.post("/warnings", json=body, headers={"Authorization": f"Bearer {key}"})
            r.raise_for_status()
            warning_id = r.json()["id"]
            results.append(timed(client, f"/warnings/{warning_id}/map.png", args.repeat))
            print(results[-1], flush=True)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            if warning_id is not None:
                conn.execute(
                    "UPDATE work_orders SET status = 'cancelled', cancel_cause = 'manual'"
                    " WHERE warning_id = %s AND status NOT IN ('done', 'cancelled')",
                    (warning_id,),
                )
                conn.execute("DELETE FROM warnings WHERE id = %s", (warning_id,))
            conn.execute("DELETE FROM api_keys WHERE id = %s", (key_id,))
    print(save("map_image", {"benchmark": "map_image", "machine": machine(), "results": results}))


if __name__ == "__main__":
    main()
