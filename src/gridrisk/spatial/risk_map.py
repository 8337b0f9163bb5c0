"""The four-colour map's maintenance jobs: full recompute and verification against a recompute."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from gridrisk.db.sql_files import sql
from gridrisk.spatial.layers import Progress


@dataclass
class RecomputeResult:
    layers: dict[str, int]
    seconds: float


def recompute_all(conn: psycopg.Connection, *, progress: Progress | None = None) -> RecomputeResult:
    """Reassign every risk item to every layer's cells and recolour every cell, in one transaction."""
    report = progress or (lambda *_: None)
    started = time.perf_counter()
    layers = [r[0] for r in conn.execute("SELECT DISTINCT layer FROM cells ORDER BY layer")]
    changed: dict[str, int] = {}
    with conn.transaction():
        for i, layer in enumerate(layers):
            report("recompute", i, len(layers))
            changed[layer] = conn.execute("SELECT risk_refresh_layer(%s)", (layer,)).fetchone()[0]
        report("recompute", len(layers), len(layers))
    return RecomputeResult(layers=changed, seconds=time.perf_counter() - started)


def verify(conn: psycopg.Connection) -> list[dict]:
    """Every difference between the maintained map and a from-scratch recompute (empty = healthy)."""
    cur = conn.execute(sql("risk_map_verify"))
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
