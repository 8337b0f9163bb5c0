"""OGC API – Features items with and without a CQL2 filter, same bbox; and the same page in CGCS2000.

Usage: .venv/bin/python bench/ogc_filter.py [--seconds 10] [--rounds 2] [--port 8795]
On the demo database (read only). wrk, 1 worker, 8 connections: a 100-item page of the safety grid
in a central bbox, as is; with `filter` (cql2-text: colour IN + LIKE on the name); with a spatial
CQL2 filter (S_INTERSECTS with a polygon); and in EPSG:4490 (Part 2). Rounds alternate the variants.
The per-caller rate limit on heavy reads is off for the run (it would answer 429s).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_tool, machine, save, server, wrk  # noqa: E402

from gridrisk.settings import Settings  # noqa: E402

BBOX = "118.70,31.95,118.90,32.10"
VARIANTS = {
    "bbox only": {},
    "bbox + CQL2 attributes": {"filter": "colour IN ('red', 'orange', 'yellow') AND name LIKE '%区%'"},
    "bbox + CQL2 spatial": {
        "filter": "S_INTERSECTS(geometry, POLYGON((118.75 32.0, 118.85 32.0, 118.85 32.07, 118.75 32.0)))"
    },
    "bbox, answer in EPSG:4490": {"crs": "http://www.opengis.net/def/crs/EPSG/0/4490"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=8795)
    args = parser.parse_args()
    ensure_tool("wrk", "wrk")
    url = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    # The per-caller limit on heavy reads is off: this measures the query, not the guard.
    os.environ["GRIDRISK_RATE_LIMIT_HEAVY"] = ""
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    with server(url, args.port) as base:
        for _ in range(args.rounds):
            for name, extra in VARIANTS.items():
                query = urlencode({"bbox": BBOX, "limit": 100, **extra})
                target = f"{base}/ogc/collections/safety/items?{query}"
                wrk(target, seconds=2)  # warm-up (statement cache, prepared plans)
                result = wrk(target, seconds=args.seconds)
                runs[name].append(result)
                print(f"{name}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
                      f"p99 {result['p99_ms']:.1f} ms, non-2xx {result['non_2xx']}", flush=True)  # fmt: skip
    print(save("ogc_filter", {"benchmark": "ogc_filter", "machine": machine(), "bbox": BBOX, "runs": runs}))


if __name__ == "__main__":
    main()
