"""The four-colour map's maintenance jobs: full recompute and verification against a recompute."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from gridrisk.db.sql_files import sql
from gridrisk.services.layers import Progress


@dataclass
class RecomputeResult:
    layers: dict[str, int]
    seconds: float


def recompute_all(conn: psycopg.Connection, *, progress: Progress | None = None) -> RecomputeResult:
    """Reassign every risk item to every layer's cells and recolour every cell, in one transaction."""
    report = progress or (lambda *_: None)
    started = time.perf_counter()
    report("recompute", 0, 1)
    with conn.transaction():
        # One pass over every layer; the changed-colour counts come from the colour history.
        mark = conn.execute("SELECT coalesce(max(id), 0) FROM cell_colour_history").fetchone()[0]
        conn.execute("SELECT risk_refresh_all()")
        rows = conn.execute(
            "SELECT c.layer, count(*) FILTER (WHERE h.old <> h.new) FROM cells c"
            " LEFT JOIN cell_colour_history h ON h.cell_id = c.id AND h.id > %s GROUP BY c.layer",
            (mark,),
        ).fetchall()
    report("recompute", 1, 1)
    return RecomputeResult(layers=dict(rows), seconds=time.perf_counter() - started)


def verify(conn: psycopg.Connection) -> list[dict]:
    """Every difference between the maintained map and a from-scratch recompute (empty = healthy)."""
    cur = conn.execute(sql("risk_map_verify"))
    cols = [d.name for d in cur.description]
    return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
