"""Shelter coverage analysis, shared by the API (async) and the CLI (sync).

Coverage (SPEC.md "Shelters"): a shelter that is not closed reaches a cell when the cell's centroid
lies within its class's service radius; each shelter's capacity is shared among the cells it reaches
in proportion to their population. The whole report is one SQL statement (db/sql/shelter_coverage*.sql).
The registry itself (and its bulk import) is `registry/shelters.py`.
"""

from __future__ import annotations

from functools import cache

import orjson
import psycopg
from psycopg import AsyncConnection

from gridrisk.db.sql_files import sql
from gridrisk.errors import NotFound

MARKER = "/*coverage*/"


# ---------------------------------------------------------------------------------------------
# Coverage


@cache
def coverage_sql(kind: str = "report") -> str:
    """The coverage statement: `report` (JSON: totals, districts, cells) or `geojson` (cells)."""
    return sql(f"shelter_coverage_{kind}").replace(MARKER, sql("shelter_coverage"))


# The statement's estimated cost (geography functions over 12,000 cells) passes the JIT threshold,
# and compiling it costs 1–2 s, several times what the query itself takes: JIT is off for it alone.
NO_JIT = "SELECT set_config('jit', 'off', true)"


LAYER_EXISTS = "SELECT 1 FROM layers WHERE name = %s"


def layer_exists(conn: psycopg.Connection, layer: str) -> bool:
    return conn.execute(LAYER_EXISTS, (layer,)).fetchone() is not None


async def coverage_json(conn: AsyncConnection, layer: str, kind: str, params: dict) -> str:
    """The coverage statement's JSON text (`report` or `geojson`) for LAYER (404 for an unknown one)."""
    cur = await conn.execute(LAYER_EXISTS, (layer,))
    if await cur.fetchone() is None:
        raise NotFound(f"No layer '{layer}'; see GET /layers.")
    async with conn.transaction():
        await conn.execute(NO_JIT)
        cur = await conn.execute(coverage_sql(kind), {"layer": layer, **params})
        return (await cur.fetchone())[kind if kind == "report" else "body"]


def coverage(conn: psycopg.Connection, layer: str = "comprehensive", *, with_cells: bool = True) -> dict:
    """The coverage report of LAYER as a dict: rule, city totals, district totals, cells (worst first).

    Raises LookupError for an unknown layer.
    """
    if not layer_exists(conn, layer):
        names = [r[0] for r in conn.execute("SELECT name FROM layers ORDER BY name").fetchall()]
        raise LookupError(f"no layer '{layer}'; the layers are: {', '.join(names) or 'none'}")
    with conn.transaction():
        conn.execute(NO_JIT)
        row = conn.execute(coverage_sql("report"), {"layer": layer, "with_cells": with_cells}).fetchone()
    return orjson.loads(row[0])


def print_coverage(report: dict, console, top: int = 20) -> None:
    """The city and district totals, then the TOP cells with the largest shortfall (for the CLI)."""
    from rich.table import Table

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f}%"

    city = report["city"]
    console.print(
        f"[bold]{report['layer']}[/bold]: population {city['population']:,}, capacity reaching them "
        f"{city['capacity']:,.0f} ({pct(city['ratio'])}), shortfall {city['shortfall']:,.0f} persons in "
        f"{city['cells_with_shortfall']:,} of {city['cells']:,} cells; {city['cells_unreached']:,} cells "
        f"({city['population_unreached']:,} people) reached by no shelter"
    )
    by_class = ", ".join(f"{k} {pct(v['ratio'])}" for k, v in (city.get("by_class") or {}).items())
    console.print(f"capacity ÷ population by class: {by_class}")
    if city["idle_shelters"]:
        console.print(
            f"[yellow]{city['idle_shelters']} shelter(s) reach no populated cell[/yellow] "
            f"({city['idle_capacity']:,} places): {', '.join(city['idle_shelter_codes'][:20])}"
        )
    table = Table(title="Districts")
    for col in ("district", "population", "capacity", "ratio", "shortfall", "cells short", "fixed ratio"):
        table.add_column(col, justify="left" if col == "district" else "right")
    for d in report["districts"]:
        fixed = (d.get("by_class") or {}).get("fixed", {}).get("ratio")
        table.add_row(
            f"{d['code']} {d['name'] or ''}",
            f"{d['population']:,}",
            f"{d['capacity']:,.0f}",
            pct(d["ratio"]),
            f"{d['shortfall']:,.0f}",
            f"{d['cells_with_shortfall']:,}/{d['cells']:,}",
            pct(fixed),
        )
    console.print(table)
    cells = report.get("cells") or []
    table = Table(title=f"The {min(top, len(cells))} cells with the largest shortfall")
    for col in ("cell", "district", "population", "capacity", "ratio", "shortfall", "shelters"):
        table.add_column(col, justify="left" if col in ("cell", "district") else "right")
    for c in cells[:top]:
        table.add_row(
            c["code"],
            c["district_code"] or "",
            f"{c['population']:,}",
            f"{c['capacity']:,.1f}",
            pct(c["ratio"]),
            f"{c['shortfall']:,.0f}",
            str(len(c["shelters"])),
        )
    console.print(table)
