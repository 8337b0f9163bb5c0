"""Work orders: a key's right to a cell's orders, the status transition, and a key's cells."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from gridrisk.api.etags import check_version
from gridrisk.api_keys import Principal
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridrisk.models.work_orders import TRANSITIONS, WorkOrderPatch
from gridrisk.registry.store import check_inside_city
from gridrisk.services.records import fetch_all, fetch_one, no_work_order, work_order_or_404


def scoped(who: Principal) -> bool:
    """Workers see their own cells only; operators and admins see every order."""
    return who.role == "worker"


async def order_rows(conn: AsyncConnection, ids: list[int]) -> list[dict]:
    """The orders' JSON bodies with their versions and cells, for these ids."""
    return await fetch_all(conn, "work_order_json", {"ids": ids})


async def check_mine(
    conn: AsyncConnection, who: Principal, layer: str, cell_code: str | None, order_id: int | None
) -> None:
    """403 unless a worker key is linked to the order's (or the asked-for) cell."""
    if not scoped(who):
        return
    if cell_code is not None:
        params = {"key_id": who.key_id, "layer": layer, "code": cell_code}
        if await fetch_one(conn, "work_order_worker_cell", params) is not None:
            return
    what = f"Work order {order_id} belongs to cell" if order_id is not None else "Cell"
    raise Forbidden(f"{what} {layer}:{cell_code} is not one of your cells.")


async def order(conn: AsyncConnection, order_id: int, who: Principal) -> dict:
    """One order's JSON row, if WHO may see it (404 when there is none, 403 when not theirs)."""
    rows = await order_rows(conn, [order_id])
    if not rows:
        raise no_work_order(order_id)
    row = rows[0]
    await check_mine(conn, who, row["layer"], row["cell_code"], order_id)
    return row


async def history(conn: AsyncConnection, order_id: int, who: Principal) -> list[dict]:
    """Every state change of one order, if WHO may see it."""
    row = await work_order_or_404(conn, order_id)
    await check_mine(conn, who, row["layer"], row["cell_code"], order_id)
    return await fetch_all(conn, "work_order_history", {"id": order_id})


def _check_change(status: str, change: WorkOrderPatch, who: Principal) -> None:
    """409 for a move the state machine forbids; 403 or 422 for what the move lacks."""
    allowed = list(TRANSITIONS[status])
    if change.status not in allowed:
        raise Conflict(
            f"A work order cannot go from '{status}' to '{change.status}'. From '{status}'"
            f" it may go to: {', '.join(allowed) or 'nothing (it is final)'}.",
            current=status,
            requested=change.status,
            allowed=allowed,
        )
    if change.status == "cancelled" and scoped(who):
        raise Forbidden("Only an operator or admin cancels a work order; report the problem in a note.")
    if change.status in ("done", "cancelled") and change.note is None:
        raise InvalidInput(
            f"A work order goes {change.status} with a note saying "
            + ("what was found and done." if change.status == "done" else "why."),
            errors=[{"field": "note", "message": f"required for {change.status}"}],
        )
    if change.status == "done" and scoped(who) and change.location is None:
        raise InvalidInput(
            "A worker marks an order done with their location (a GeoJSON Point), the proof of the visit.",
            errors=[{"field": "location", "message": "required for done"}],
        )


async def transition(
    conn: AsyncConnection, order_id: int, change: WorkOrderPatch, who: Principal, expected: int | None
) -> dict:
    """Lock, check (cell, If-Match, state machine) and move one order, in one transaction; the order after."""
    async with conn.transaction():
        row = await work_order_or_404(conn, order_id, "work_order_lock")
        await check_mine(conn, who, row["layer"], row["cell_code"], order_id)
        check_version(row["version"], expected)
        _check_change(row["status"], change, who)
        lon = lat = None
        if change.location is not None:
            await check_inside_city(conn, change.location.model_dump_json())
            lon, lat = change.location.coordinates[:2]
        await conn.execute(
            sql("work_order_transition"),
            {
                "id": order_id,
                "to": change.status,
                "from": row["status"],
                "note": change.note,
                "photo_url": str(change.photo_url) if change.photo_url else None,
                "lon": lon,
                "lat": lat,
                "who": who.name,
            },
        )
        return await order(conn, order_id, who)


async def key_cells(conn: AsyncConnection, key_id: int) -> dict[str, Any]:
    """An active key's holder and the cells they work in; 404 for an unknown or revoked key."""
    key = await fetch_one(conn, "api_key_active", {"key_id": key_id})
    if key is None:
        raise NotFound(f"No active API key with id {key_id}; see `gridrisk keys list`.")
    cells = await fetch_all(conn, "api_key_cells", {"key_id": key_id})
    return {"key_id": key["id"], "name": key["name"], "role": key["role"], "cells": cells}


async def set_key_cells(conn: AsyncConnection, key_id: int, cells: list[tuple[str, str]]) -> dict[str, Any]:
    """Replace the key's cell links with CELLS (422 naming unknown ones), in one transaction."""
    refs = {"layers": [c[0] for c in cells], "codes": [c[1] for c in cells]}
    async with conn.transaction():
        await key_cells(conn, key_id)
        rows = await fetch_all(conn, "work_order_unknown_cells", refs)
        unknown = [f"{r['layer']}:{r['code']}" for r in rows]
        if unknown:
            raise InvalidInput(
                f"No such cell(s): {', '.join(unknown[:20])}.",
                errors=[{"field": "cells", "message": f"unknown: {', '.join(unknown[:20])}"}],
            )
        await conn.execute(sql("work_order_key_cells"), {"key_id": key_id, **refs})
        return await key_cells(conn, key_id)
