"""Named queries on an async connection, and the lookups that answer 404 for a missing record."""

from __future__ import annotations

from functools import cache
from typing import Any

from psycopg import AsyncConnection

from gridrisk.db.sql_files import sql
from gridrisk.errors import NotFound


async def fetch_one(conn: AsyncConnection, name: str, params: dict[str, Any] | None = None) -> Any:
    """The first row of the query in db/sql/NAME.sql, or None."""
    cur = await conn.execute(sql(name), params)
    return await cur.fetchone()


async def fetch_all(conn: AsyncConnection, name: str, params: dict[str, Any] | None = None) -> list[Any]:
    """Every row of the query in db/sql/NAME.sql."""
    cur = await conn.execute(sql(name), params)
    return await cur.fetchall()


async def layer_or_404(conn: AsyncConnection, layer: str, *, list_layers: bool = False) -> dict:
    """The layer's name and kind; 404 when there is none (naming the known layers if LIST_LAYERS)."""
    row = await fetch_one(conn, "layer_get", {"layer": layer})
    if row is None:
        if list_layers:
            names = (await fetch_one(conn, "layer_names"))["names"]
            raise NotFound(f"No layer '{layer}'. Layers: {names}.")
        raise NotFound(f"No layer '{layer}'.")
    return row


def no_cell(layer: str, code: str) -> NotFound:
    """The 404 of a cell code that the layer does not have."""
    return NotFound(f"No cell '{code}' in layer '{layer}'.")


@cache
def _cell_feature_sql() -> str:
    """cells_page.sql narrowed to one code, its one feature taken out: one rendering of a cell for both."""
    anchor = "c.layer = %(layer)s"
    page = sql("cells_page")
    if page.count(anchor) != 1:
        raise RuntimeError(f"cells_page.sql must filter on `{anchor}` exactly once")
    narrowed = page.replace(anchor, anchor + " AND c.code = %(code)s")
    return "SELECT (f.features::json ->> 0) AS feature FROM (" + narrowed + ") f"


async def cell_feature_or_404(conn: AsyncConnection, layer: str, code: str) -> str:
    """The cell CODE of LAYER as GeoJSON Feature text, as a page of cells renders it; 404 when none."""
    params = {"layer": layer, "code": code, "bbox": None, "limit": 1, "offset": 0}
    cur = await conn.execute(_cell_feature_sql(), params)
    row = await cur.fetchone()
    if row is None or row["feature"] is None:
        raise no_cell(layer, code)
    return row["feature"]


async def cell_id_or_404(conn: AsyncConnection, layer: str, code: str) -> int:
    """The id of the cell CODE of LAYER; 404 when there is none."""
    row = await fetch_one(conn, "cell_id", {"layer": layer, "code": code})
    if row is None:
        raise no_cell(layer, code)
    return row["id"]


def no_warning(warning_id: int) -> NotFound:
    """The 404 of a warning id that names no warning."""
    return NotFound(f"No warning with id {warning_id}.")


async def warning_or_404(conn: AsyncConnection, warning_id: int) -> None:
    """Nothing when the warning exists; 404 otherwise."""
    if await fetch_one(conn, "warning_exists", {"warning_id": warning_id}) is None:
        raise no_warning(warning_id)


async def work_order_or_404(conn: AsyncConnection, order_id: int, query: str = "work_order_cell") -> dict:
    """The work order's row from QUERY (its cell, or work_order_lock's locked state); 404 when none."""
    row = await fetch_one(conn, query, {"id": order_id})
    if row is None:
        raise no_work_order(order_id)
    return row


def no_work_order(order_id: int) -> NotFound:
    """The 404 of a work order id that names no order."""
    return NotFound(f"No work order with id {order_id}.")
