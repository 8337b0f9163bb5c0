"""Work orders (响应工单): grid workers read and move their cells' orders; operators see every order.

A worker key (role `worker`) is linked to its cells through cell_workers.api_key_id (an admin sets
the links: PUT /api-keys/{id}/cells, or `gridrisk keys create --cell LAYER:CODE`). It sees and
changes only the orders of those cells (403 for any other); operators and admins see all of them.
Every change goes through one locked UPDATE with If-Match, is kept in the order's history, and
reaches GET /events as a `work_order` event (a trigger writes it in the same transaction).
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from psycopg import AsyncConnection

from gridrisk.api.deps import Admin, FieldWorker, PoolDep
from gridrisk.api.etags import check_version, etag, parse_if_match
from gridrisk.api.geojson import GEOJSON, page_links, raw_json
from gridrisk.api.params import PageDep
from gridrisk.api.registry import check_inside_city
from gridrisk.api_keys import Principal
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, Forbidden, InvalidInput, NotFound
from gridrisk.models.work_orders import (
    TRANSITIONS,
    KeyCells,
    KeyCellsOut,
    OrderHistoryEntry,
    Status,
    WorkOrderOut,
    WorkOrderPage,
    WorkOrderPatch,
)

router = APIRouter(tags=["work orders"])

ORDER = {200: {"model": WorkOrderOut, "description": "The work order, with its ETag"}}
TRANSITION_DOC = "; ".join(f"{src} → {', '.join(dst) or '(final)'}" for src, dst in TRANSITIONS.items())


def _scoped(who: Principal) -> bool:
    """Workers see their own cells only; operators and admins see every order."""
    return who.role == "worker"


async def _orders(conn: AsyncConnection, ids: list[int]) -> list[dict]:
    cur = await conn.execute(sql("work_order_json"), {"ids": ids})
    return await cur.fetchall()


async def _check_mine(
    conn: AsyncConnection, who: Principal, layer: str, cell_code: str | None, order_id: int | None
):
    """403 unless a worker key is linked to the order's (or the asked-for) cell."""
    if not _scoped(who):
        return
    if cell_code is not None:
        cur = await conn.execute(
            "SELECT 1 FROM cell_workers WHERE api_key_id = %s AND layer = %s AND cell_code = %s",
            (who.key_id, layer, cell_code),
        )
        if await cur.fetchone() is not None:
            return
    what = f"Work order {order_id} belongs to cell" if order_id is not None else "Cell"
    raise Forbidden(f"{what} {layer}:{cell_code} is not one of your cells.")


async def _order_response(conn: AsyncConnection, order_id: int, who: Principal) -> Response:
    rows = await _orders(conn, [order_id])
    if not rows:
        raise NotFound(f"No work order with id {order_id}.")
    row = rows[0]
    await _check_mine(conn, who, row["layer"], row["cell_code"], order_id)
    return raw_json(row["body"], media_type="application/json", headers={"ETag": etag(row["version"])})


@router.get(
    "/work-orders",
    response_model=WorkOrderPage,
    summary="Work orders, soonest due first (a worker key: its own cells only)",
    description="Filters: `warning` (id), `cell` (a code of `layer`, default comprehensive), `status` "
    "(repeatable), `assignee=me` (orders of the cells your key is linked to), `overdue` (true: unfinished "
    "and past due; false: the rest). Needs a key with the `field` right (worker, operator, admin); a "
    "worker key asking for a cell that is not its own gets a 403.",
)
async def list_work_orders(
    request: Request,
    pool: PoolDep,
    who: FieldWorker,
    page: PageDep,
    warning: Annotated[int | None, Query(ge=1, description="Warning id")] = None,
    layer: Annotated[str, Query(max_length=64, description="Layer of `cell`")] = "comprehensive",
    cell: Annotated[str | None, Query(min_length=1, max_length=64, description="Cell code")] = None,
    status: Annotated[list[Status] | None, Query(description="Only these statuses")] = None,
    assignee: Annotated[
        Literal["me"] | None, Query(description="me: the cells your key is linked to")
    ] = None,
    overdue: Annotated[
        bool | None, Query(description="Unfinished and past due (true) or not (false)")
    ] = None,
):
    params = {
        "warning": warning,
        "layer": layer,
        "cell": cell,
        "statuses": list(dict.fromkeys(status)) if status else None,
        "overdue": overdue,
        "scope_key": who.key_id if (_scoped(who) or assignee == "me") else None,
        "limit": page.limit,
        "offset": page.offset,
    }
    async with pool.connection() as conn:
        if cell is not None:
            await _check_mine(conn, who, layer, cell, None)
        cur = await conn.execute(sql("work_order_search"), params)
        found = await cur.fetchone()
        rows = await _orders(conn, list(found["ids"])) if found["ids"] else []
    links = page_links(
        request,
        offset=page.offset,
        limit=page.limit,
        returned=len(rows),
        matched=found["matched"],
        media_type="application/json",
    )
    body = (
        b'{"numberMatched":%d,"numberReturned":%d,"links":' % (found["matched"], len(rows))
        + orjson.dumps(links)
        + b',"items":['
        + ",".join(r["body"] for r in rows).encode()
        + b"]}"
    )
    return Response(body, media_type="application/json")


@router.get("/work-orders/{order_id}", response_model=None, summary="One work order", responses=ORDER)
async def get_work_order(order_id: int, pool: PoolDep, who: FieldWorker):
    async with pool.connection() as conn:
        return await _order_response(conn, order_id, who)


@router.patch(
    "/work-orders/{order_id}",
    response_model=None,
    summary="Move a work order to its next status (If-Match with its ETag)",
    description="Transitions: "
    + TRANSITION_DOC
    + ". Any other move is a 409 whose `allowed` lists the next states. `done` needs a `note` (what was "
    "found and done), and from a worker key its `location` (a GeoJSON Point inside the city; the distance "
    "to the target is recorded); `photo_url` is optional. `cancelled` needs a `note` and an operator or "
    "admin key (a worker cannot cancel an order). Every transition is kept in the order's history and "
    "sent to GET /events.",
    responses={
        **ORDER,
        409: {"description": "Not allowed from the current status; `allowed` lists the next states"},
        412: {"description": "Stale If-Match (current ETag returned)"},
        428: {"description": "If-Match missing"},
    },
)
async def patch_work_order(
    order_id: int,
    body: WorkOrderPatch,
    pool: PoolDep,
    who: FieldWorker,
    if_match: Annotated[str | None, Header(description="ETag of the version you read")] = None,
):
    expected = parse_if_match(if_match, required=True)
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT id, status, version, layer, cell_code FROM work_orders WHERE id = %s FOR UPDATE",
            (order_id,),
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"No work order with id {order_id}.")
        await _check_mine(conn, who, row["layer"], row["cell_code"], order_id)
        check_version(row["version"], expected)
        allowed = list(TRANSITIONS[row["status"]])
        if body.status not in allowed:
            raise Conflict(
                f"A work order cannot go from '{row['status']}' to '{body.status}'. From '{row['status']}'"
                f" it may go to: {', '.join(allowed) or 'nothing (it is final)'}.",
                current=row["status"],
                requested=body.status,
                allowed=allowed,
            )
        if body.status == "cancelled" and _scoped(who):
            raise Forbidden("Only an operator or admin cancels a work order; report the problem in a note.")
        if body.status in ("done", "cancelled") and body.note is None:
            raise InvalidInput(
                f"A work order goes {body.status} with a note saying "
                + ("what was found and done." if body.status == "done" else "why."),
                errors=[{"field": "note", "message": f"required for {body.status}"}],
            )
        if body.status == "done" and _scoped(who) and body.location is None:
            raise InvalidInput(
                "A worker marks an order done with their location (a GeoJSON Point), the proof of the visit.",
                errors=[{"field": "location", "message": "required for done"}],
            )
        lon = lat = None
        if body.location is not None:
            await check_inside_city(conn, body.location.model_dump_json())
            lon, lat = body.location.coordinates[:2]
        await conn.execute(
            sql("work_order_transition"),
            {
                "id": order_id,
                "to": body.status,
                "from": row["status"],
                "note": body.note,
                "photo_url": str(body.photo_url) if body.photo_url else None,
                "lon": lon,
                "lat": lat,
                "who": who.name,
            },
        )
        return await _order_response(conn, order_id, who)


@router.get(
    "/work-orders/{order_id}/history",
    response_model=list[OrderHistoryEntry],
    summary="Every state change of a work order: issued, escalated, transitions, cancelled, reopened",
)
async def work_order_history(order_id: int, pool: PoolDep, who: FieldWorker):
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT layer, cell_code FROM work_orders WHERE id = %s", (order_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"No work order with id {order_id}.")
        await _check_mine(conn, who, row["layer"], row["cell_code"], order_id)
        cur = await conn.execute(sql("work_order_history"), {"id": order_id})
        rows = await cur.fetchall()
    return Response(orjson.dumps(rows), media_type="application/json")


@router.get(
    "/warnings/{warning_id}/work-orders.geojson",
    summary="A warning's work orders as GeoJSON points for the map (a worker key: its own cells only)",
    description="One point per target with `status`, `action`, `level`, `overdue`, the target and its cell: "
    "what a map colours orders by. The warning's area is in GET /warnings/{id}.",
    responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection"}},
)
async def warning_orders_geojson(
    warning_id: int,
    pool: PoolDep,
    who: FieldWorker,
    status: Annotated[list[Status] | None, Query(description="Only these statuses")] = None,
):
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM warnings WHERE id = %s", (warning_id,))
        if await cur.fetchone() is None:
            raise NotFound(f"No warning with id {warning_id}.")
        cur = await conn.execute(
            sql("work_order_geojson"),
            {
                "warning_id": warning_id,
                "statuses": list(dict.fromkeys(status)) if status else None,
                "scope_key": who.key_id if _scoped(who) else None,
            },
        )
        body = (await cur.fetchone())["body"]
    return raw_json(body)


# ---------------------------------------------------------------------------------------------
# Which cells a key's holder works in


async def _key_cells(conn: AsyncConnection, key_id: int) -> dict:
    cur = await conn.execute(
        "SELECT id, name, role FROM api_keys WHERE id = %s AND revoked_at IS NULL", (key_id,)
    )
    key = await cur.fetchone()
    if key is None:
        raise NotFound(f"No active API key with id {key_id}; see `gridrisk keys list`.")
    cur = await conn.execute(
        "SELECT DISTINCT layer, cell_code AS code FROM cell_workers WHERE api_key_id = %s"
        " ORDER BY layer, code",
        (key_id,),
    )
    return {"key_id": key["id"], "name": key["name"], "role": key["role"], "cells": await cur.fetchall()}


@router.get(
    "/api-keys/{key_id}/cells",
    response_model=KeyCellsOut,
    summary="The cells a key's holder works in (admin)",
)
async def get_key_cells(key_id: int, pool: PoolDep, _: Admin):
    async with pool.connection() as conn:
        return await _key_cells(conn, key_id)


@router.put(
    "/api-keys/{key_id}/cells",
    response_model=KeyCellsOut,
    summary="Set the cells a key's holder works in (admin): a worker key then sees those cells' orders",
    description="Replaces the key's links. For each cell, a worker listed there under the key's name takes "
    "the key; otherwise the key's holder is added as a worker of the cell. Cells no longer listed lose the "
    "link (their worker rows stay). Unknown cells are a 422 and change nothing.",
)
async def put_key_cells(key_id: int, body: KeyCells, pool: PoolDep, _: Admin):
    cells = list(dict.fromkeys((c.layer, c.code) for c in body.cells))
    async with pool.connection() as conn, conn.transaction():
        await _key_cells(conn, key_id)
        cur = await conn.execute(
            sql("work_order_unknown_cells"), {"layers": [c[0] for c in cells], "codes": [c[1] for c in cells]}
        )
        unknown = [f"{r['layer']}:{r['code']}" for r in await cur.fetchall()]
        if unknown:
            raise InvalidInput(
                f"No such cell(s): {', '.join(unknown[:20])}.",
                errors=[{"field": "cells", "message": f"unknown: {', '.join(unknown[:20])}"}],
            )
        await conn.execute(
            sql("work_order_key_cells"),
            {"key_id": key_id, "layers": [c[0] for c in cells], "codes": [c[1] for c in cells]},
        )
        return await _key_cells(conn, key_id)
