"""Time a 100,000-row risk-source import (validate / copy / upsert+triggers) and a full map recompute.

Usage: .venv/bin/python bench/risk_sources_bulk.py [--rows 100000] [--template gridrisk] [--keep]
Generates a deterministic CSV of points inside the demo city's comprehensive cells, imports it
into a scratch copy of the demo database (CREATE DATABASE ... TEMPLATE) through the same code path
as `POST /risk-sources/import`, re-imports it unchanged, then times `risk_refresh_layer` per layer.
The scratch database is dropped at the end.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, save  # noqa: E402

from gridrisk.demo.sources import load_comprehensive_cells, points_in_cells  # noqa: E402
from gridrisk.models.risk_sources import LEC_C, LEC_E, LEC_L  # noqa: E402
from gridrisk.registry.bulk import import_file  # noqa: E402
from gridrisk.registry.risk_sources import RISK_SOURCES  # noqa: E402
from gridrisk.services.risk_map import recompute_all  # noqa: E402
from gridrisk.settings import Settings  # noqa: E402

CATEGORIES = (
    "hazardous_chemicals gas construction_site crowded_place special_equipment fireworks dust_explosion "
    "ammonia_refrigeration confined_space road_water_transport other"
).split()


def with_dbname(url: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(url)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)


def generate_csv(conn: psycopg.Connection, path: Path, rows: int, seed: int, change_every: int = 0) -> None:
    """ROWS sources at population-weighted points inside the comprehensive cells; LEC/LS mixed.

    With CHANGE_EVERY = k, every k-th source is reassessed red (LEC 10 × 6 × 40), for a re-import.
    """
    cells = load_comprehensive_cells(conn)
    rng = np.random.default_rng(seed)
    pop = cells["population"]
    idx = rng.choice(len(pop), size=rows, p=pop / pop.sum())
    lon, lat = points_in_cells(cells["geoms"], idx, rng)
    cat = rng.integers(len(CATEGORIES), size=rows)
    ls = rng.random(rows) < 0.15
    L, E, C = (np.array(v)[rng.integers(len(v), size=rows)] for v in (LEC_L, LEC_E, LEC_C))
    l5, s5 = rng.integers(1, 6, size=rows), rng.integers(1, 6, size=rows)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["code", "name", "category", "lon", "lat", "address", "plate_code", "enterprise",
                    "department", "method", "L", "E", "C", "S"])  # fmt: skip
        for i in range(rows):
            assess = (
                ["LS", l5[i], "", "", s5[i]] if ls[i] else ["LEC", f"{L[i]:g}", f"{E[i]:g}", f"{C[i]:g}", ""]
            )
            if change_every and i % change_every == 0:
                assess = ["LEC", "10", "6", "40", ""]
            w.writerow([f"BENCH-{i + 1:06d}", f"压测风险源{i + 1}", CATEGORIES[cat[i]], f"{lon[i]:.7f}",
                        f"{lat[i]:.7f}", f"南京市测试路{i % 997 + 1}号", f"NJ-BENCH-{i + 1:08d}",
                        f"南京压测企业{i % 5000}有限公司", "应急管理局", *assess])  # fmt: skip


def timed_import(url: str, path: Path, label: str) -> dict:
    """One import in its own transaction; the time per stage as the import measured it."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        result = import_file(conn, RISK_SOURCES, path, actor="bench")
        if not result.ok:
            sys.exit(f"{label}: rejected: {result.message} {result.errors[:3]}")
        t = time.perf_counter()
    commit = time.perf_counter() - t
    out = {
        "seconds": round(time.perf_counter() - started, 2),
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "stages_s": {k: round(v, 2) for k, v in result.stages.items()} | {"commit": round(commit, 2)},
    }
    print(f"{label}: {out}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--template", default=None, help="Database to copy (default: the configured one)")
    parser.add_argument("--keep", action="store_true", help="Keep the scratch database")
    args = parser.parse_args()
    base = os.environ.get("GRIDRISK_DATABASE_URL") or Settings().database_url
    template = args.template or psycopg.conninfo.conninfo_to_dict(base)["dbname"]
    scratch = f"bench_risk_sources_{os.getpid()}"
    admin = with_dbname(base, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}" TEMPLATE "{template}"')
    url = with_dbname(base, scratch)
    try:
        with psycopg.connect(url) as conn:
            before = conn.execute("SELECT count(*) FROM risk_sources").fetchone()[0]
            cells = dict(conn.execute("SELECT layer, count(*) FROM cells GROUP BY layer").fetchall())
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "sources.csv"
            t = time.perf_counter()
            with psycopg.connect(url) as conn:
                generate_csv(conn, path, args.rows, args.seed)
            print(f"generated {args.rows} rows ({path.stat().st_size / 2**20:.1f} MiB) in "
                  f"{time.perf_counter() - t:.1f} s; {before} sources already in {template}")  # fmt: skip
            first = timed_import(url, path, "first import")
            again = timed_import(url, path, "re-import, unchanged")
            with psycopg.connect(url) as conn:
                generate_csv(conn, path, args.rows, args.seed, change_every=100)
            changed = timed_import(url, path, "re-import, 1 % reassessed")
        with psycopg.connect(url) as conn:
            mix = dict(conn.execute("SELECT colour, count(*) FROM cell_risk GROUP BY colour").fetchall())
            layers = [r[0] for r in conn.execute("SELECT DISTINCT layer FROM cell_risk ORDER BY 1")]
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            has_all = conn.execute("SELECT to_regproc('risk_refresh_all') IS NOT NULL").fetchone()[0]
        recompute = {}
        for layer in layers:
            with psycopg.connect(url) as conn:
                t = time.perf_counter()
                conn.execute("SELECT risk_refresh_layer(%s)", (layer,))
                conn.commit()
                recompute[layer] = round(time.perf_counter() - t, 2)
            print(f"recompute {layer} ({cells.get(layer, 0)} cells): {recompute[layer]} s")
        recompute["sum_of_layers"] = round(sum(recompute.values()), 2)
        if has_all:  # one pass over every layer: what `gridrisk riskmap recompute` runs
            with psycopg.connect(url) as conn:
                t = time.perf_counter()
                recompute_all(conn)
                recompute["risk_refresh_all"] = round(time.perf_counter() - t, 2)
            print(f"recompute all layers at once (risk_refresh_all): {recompute['risk_refresh_all']} s")
        data = {
            "benchmark": "risk_sources_bulk",
            "rows": args.rows,
            "template": template,
            "revision": revision,
            "cells": cells,
            "machine": machine(),
            "first_import": first,
            "reimport_unchanged": again,
            "reimport_1pct_changed": changed,
            "cell_colours_after": mix,
            "recompute_s": recompute,
        }
        print(f"saved {save('risk_sources_bulk', data)}")
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')


if __name__ == "__main__":
    main()
