"""Benchmark targeted warnings on the full demo city: how long a warning takes to become work orders.

Usage: .venv/bin/python bench/targeted_warnings.py [--repeat 3] [--no-http] [--port 8793]

Scenarios (red rainstorm unless said otherwise):
- Jiangning (江宁区, 320115, ~1,565 km²), given as its district code: first post, re-post of the
  same message (the diff finds nothing to do), escalation yellow → red, cancel;
- the whole city (all 11 districts, 6,587 km²), red rainstorm and red heat (the hazard with the most
  exposed targets in the demo: hazardous-chemical sites and crowded places).
In-process, each run is one transaction on the demo database that is rolled back afterwards, so
the demo city stays as it was (commit cost is not included there). Over HTTP (unless --no-http),
`gridrisk serve` answers POST /warnings end to end, commit included; what those posts wrote
(warnings, their orders and history, their events, the bench's API key) is deleted afterwards.
Results go to bench/results/warnings.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
from common import machine, save, server
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from gridrisk.api_keys import create_key
from gridrisk.db import migrate
from gridrisk.db.sql_files import sql
from gridrisk.models.warnings import WarningIn, spec_from_json
from gridrisk.services.warning_targeting import apply_warning, cancel_warning, resolve_area
from gridrisk.settings import Settings

JIANGNING = "320115"
PREFIX = "BENCH-WARN-"


def body(identifier: str, *, level: str = "red", hazard: str = "rainstorm", districts: list[str]) -> dict:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "identifier": identifier,
        "sender": "bench",
        "hazard_type": hazard,
        "level": level,
        "valid_from": now.isoformat(),
        "valid_until": (now + timedelta(hours=6)).isoformat(),
        "headline": f"bench {hazard} {level}",
        "area": {"districts": districts},
    }


def spec_of(doc: dict):
    return spec_from_json(WarningIn.model_validate(doc))


async def timed(coro) -> tuple[float, object]:
    started = time.perf_counter()
    result = await coro
    return time.perf_counter() - started, result


async def scenario(url: str, doc: dict, *, escalate_from: str | None = None) -> dict:
    """One run in one transaction, rolled back: area, first post, re-post, (escalation,) cancel."""
    async with await AsyncConnection.connect(url, row_factory=dict_row) as conn:
        try:
            out: dict = {}
            if escalate_from:
                first = spec_of({**doc, "level": escalate_from})
                area = await resolve_area(conn, first.area)
                await apply_warning(conn, first, area, "bench")
            spec = spec_of(doc)
            out["area_s"], area = await timed(resolve_area(conn, spec.area))
            out["area_km2"] = area.km2
            out["post_s"], outcome = await timed(apply_warning(conn, spec, area, "bench"))
            out["orders"] = outcome.orders
            out["repost_s"], again = await timed(apply_warning(conn, spec, area, "bench"))
            assert not again.applied, again.orders
            cur = await conn.execute(
                "SELECT count(*) AS n, count(*) FILTER (WHERE action = 'evacuate') AS evacuate,"
                " count(*) FILTER (WHERE action = 'evacuate' AND shelter_id IS NULL) AS no_shelter,"
                " count(*) FILTER (WHERE cell_code IS NULL) AS no_cell"
                " FROM work_orders WHERE warning_id = %s",
                (outcome.warning_id,),
            )
            out["work_orders"] = dict(await cur.fetchone())
            # The affected cells again, as the post computed them (an area of whole districts reads
            # the crosswalk) and the way any other area is computed (intersecting cell pieces).
            t = time.perf_counter()
            await conn.execute(
                sql("warning_affected_cells"), {"warning_id": outcome.warning_id, "districts": None}
            )
            out["affected_cells_geometry_s"] = time.perf_counter() - t
            t = time.perf_counter()
            await conn.execute(
                sql("warning_affected_cells"), {"warning_id": outcome.warning_id, "districts": area.districts}
            )
            out["affected_cells_s"] = time.perf_counter() - t
            cur = await conn.execute(
                "SELECT (SELECT jsonb_object_agg(k, jsonb_array_length(v))"
                " FROM jsonb_each(affected_cells) e(k, v)) AS cells FROM warnings WHERE id = %s",
                (outcome.warning_id,),
            )
            out["affected_cells"] = (await cur.fetchone())["cells"]
            out["cancel_s"], cancelled = await timed(
                cancel_warning(conn, "bench", warning_id=outcome.warning_id)
            )
            out["cancelled_orders"] = cancelled.orders["cancelled"]
            return out
        finally:
            await conn.rollback()


def summarise(runs: list[dict]) -> dict:
    keys = [k for k in runs[0] if k.endswith("_s")]
    out = {
        k: {"median": round(statistics.median(r[k] for r in runs), 3), "all": [round(r[k], 3) for r in runs]}
        for k in keys
    }
    last = runs[-1]
    out.update({k: v for k, v in last.items() if not k.endswith("_s")})
    return out


def http_runs(url: str, port: int, districts_all: list[str]) -> dict:
    """POST /warnings end to end (commit included) through `gridrisk serve`, then delete what it wrote."""
    with psycopg.connect(url, autocommit=True) as conn:
        key_id, key = create_key(conn, "bench-warnings", "operator")
        last_event = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    results = {}
    try:
        with (
            server(url, port) as base,
            httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {key}"}) as client,
        ):
            cases = [
                ("jiangning_red_rainstorm", body(PREFIX + "JN", districts=[JIANGNING])),
                ("jiangning_red_rainstorm_repost", body(PREFIX + "JN", districts=[JIANGNING])),
                ("city_red_rainstorm", body(PREFIX + "CITY", districts=districts_all)),
                ("city_red_heat", body(PREFIX + "HEAT", hazard="heat", districts=districts_all)),
            ]
            for name, doc in cases:
                t = time.perf_counter()
                r = client.post("/warnings", json=doc)
                elapsed = time.perf_counter() - t
                r.raise_for_status()
                res = r.json()["result"]
                results[name] = {
                    "seconds": round(elapsed, 3),
                    "db_seconds": res["seconds"],
                    "orders": res["orders"],
                    "status": r.status_code,
                }
                print(f"  HTTP {name}: {elapsed:.2f} s, {res['orders']}", file=sys.stderr)
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM warnings WHERE identifier LIKE %s", (PREFIX + "%",))
            conn.execute(
                "DELETE FROM events WHERE id > %s AND kind IN ('warning', 'work_order')"
                " AND (payload->>'warning' IS NOT NULL OR payload->>'identifier' LIKE %s)",
                (last_event, PREFIX + "%"),
            )
            conn.execute("DELETE FROM api_keys WHERE id = %s", (key_id,))
            left = conn.execute(
                "SELECT (SELECT count(*) FROM warnings WHERE identifier LIKE %s),"
                " (SELECT count(*) FROM work_orders o"
                "  WHERE NOT EXISTS (SELECT 1 FROM warnings w WHERE w.id = o.warning_id))",
                (PREFIX + "%",),
            ).fetchone()
            assert left == (0, 0), left
    return results


async def main_async(args) -> dict:
    url = args.database_url
    with psycopg.connect(url) as conn:
        districts = [
            r[0] for r in conn.execute("SELECT code FROM cells WHERE layer = 'district' ORDER BY code")
        ]
        figures = conn.execute(
            "SELECT (SELECT count(*) FROM risk_sources), (SELECT count(*) FROM hazard_points),"
            " (SELECT count(*) FROM shelters), (SELECT count(*) FROM cells WHERE layer = 'comprehensive')"
        ).fetchone()
    if JIANGNING not in districts or figures[0] < 10_000:
        sys.exit("the full demo city is not loaded: run `make run` once, or `gridrisk demo ensure`")
    data = {
        "risk_sources": figures[0],
        "hazard_points": figures[1],
        "shelters": figures[2],
        "comprehensive_cells": figures[3],
    }
    scenarios = {
        "jiangning_red_rainstorm": (body(PREFIX + "JN", districts=[JIANGNING]), None),
        "jiangning_yellow_to_red_rainstorm": (body(PREFIX + "JN", districts=[JIANGNING]), "yellow"),
        "city_red_rainstorm": (body(PREFIX + "CITY", districts=districts), None),
        "city_red_heat": (body(PREFIX + "HEAT", hazard="heat", districts=districts), None),
    }
    out: dict = {"data": data, "in_process": {}}
    for name, (doc, escalate_from) in scenarios.items():
        runs = []
        for i in range(args.repeat):
            run = await scenario(url, doc, escalate_from=escalate_from)
            runs.append(run)
            print(
                f"  {name} #{i + 1}: post {run['post_s']:.2f} s ({run['orders']}),"
                f" re-post {run['repost_s']:.2f} s, affected cells {run['affected_cells_s']:.2f} s"
                f" (by geometry {run['affected_cells_geometry_s']:.2f} s),"
                f" cancel {run['cancel_s']:.2f} s",
                file=sys.stderr,
            )
        out["in_process"][name] = summarise(runs)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-http", action="store_true", help="Skip the end-to-end HTTP runs")
    parser.add_argument("--port", type=int, default=8793)
    parser.add_argument(
        "--database-url", default=os.environ.get("GRIDRISK_DATABASE_URL", Settings().database_url)
    )
    args = parser.parse_args()
    settings = Settings(database_url=args.database_url)
    if migrate.current_revision(settings) != migrate.head_revision(settings):
        print("migrating the demo database to the newest revision (adds the warning tables)", file=sys.stderr)
        migrate.upgrade(settings)
    load = os.getloadavg()
    result = asyncio.run(main_async(args))
    if not args.no_http:
        with psycopg.connect(args.database_url) as conn:
            districts = [
                r[0] for r in conn.execute("SELECT code FROM cells WHERE layer = 'district' ORDER BY code")
            ]
        result["http"] = http_runs(args.database_url, args.port, districts)
    result["machine"] = {
        **machine(),
        "loadavg_before": [round(x, 2) for x in load],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    path = save("targeted_warnings", result)
    print(f"results in {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
