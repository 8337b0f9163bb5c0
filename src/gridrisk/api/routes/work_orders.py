"""Work orders (响应工单): grid workers read and move their cells' orders; operators see every order.

A worker key (role `worker`) is linked to its cells through cell_workers.api_key_id (an admin sets
the links: PUT /api-keys/{id}/cells, or `gridrisk keys create --cell LAYER:CODE`). It sees and
changes only the orders of those cells (403 for any other); operators and admins see all of them.
Every change is one locked, If-Match-checked write (services/work_orders.py), kept in the order's
history, and reaches GET /events as a `work_order` event (a trigger writes it in the same transaction).
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request, Response

from gridrisk.api.deps import Admin, FieldWorker, PoolDep
from gridrisk.api.etags import etag, parse_if_match
from gridrisk.api.geojson import GEOJSON, page_links, raw_json
from gridrisk.api.params import PageDep
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
from gridrisk.services.records import fetch_one, warning_or_404
from gridrisk.services.work_orders import (
    check_mine,
    history,
    key_cells,
    order,
    order_rows,
    scoped,
    set_key_cells,
    transition,
)

router = APIRouter(tags=["work orders"])

ORDER = {200: {"model": WorkOrderOut, "description": "The work order, with its ETag"}}
TRANSITION_DOC = "; ".join(f"{src} → {', '.join(dst) or '(final)'}" for src, dst in TRANSITIONS.items())


def _order_response(row: dict) -> Response:
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
        "scope_key": who.key_id if (scoped(who) or assignee == "me") else None,
        "limit": page.limit,
        "offset": page.offset,
    }
    async with pool.connection() as conn:
        if cell is not None:
            await check_mine(conn, who, layer, cell, None)
        found = await fetch_one(conn, "work_order_search", params)
        rows = await order_rows(conn, list(found["ids"])) if found["ids"] else []
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
        return _order_response(await order(conn, order_id, who))


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
    async with pool.connection() as conn:
        return _order_response(await transition(conn, order_id, body, who, expected))


@router.get(
    "/work-orders/{order_id}/history",
    response_model=list[OrderHistoryEntry],
    summary="Every state change of a work order: issued, escalated, transitions, cancelled, reopened",
)
async def work_order_history(order_id: int, pool: PoolDep, who: FieldWorker):
    async with pool.connection() as conn:
        rows = await history(conn, order_id, who)
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
        await warning_or_404(conn, warning_id)
        params = {
            "warning_id": warning_id,
            "statuses": list(dict.fromkeys(status)) if status else None,
            "scope_key": who.key_id if scoped(who) else None,
        }
        body = (await fetch_one(conn, "work_order_geojson", params))["body"]
    return raw_json(body)


# ---------------------------------------------------------------------------------------------
# Which cells a key's holder works in


@router.get(
    "/api-keys/{key_id}/cells",
    response_model=KeyCellsOut,
    summary="The cells a key's holder works in (admin)",
)
async def get_key_cells(key_id: int, pool: PoolDep, _: Admin):
    async with pool.connection() as conn:
        return await key_cells(conn, key_id)


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
    async with pool.connection() as conn:
        return await set_key_cells(conn, key_id, cells)
