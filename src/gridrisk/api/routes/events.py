"""Live changes as Server-Sent Events: every outbox event (cell colours, ...) within a second of commit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import orjson
import psycopg
import psycopg_pool
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from gridrisk.api.deps import PoolDep, Reader, SettingsDep
from gridrisk.db.sql_files import sql
from gridrisk.errors import InvalidInput, ServiceUnavailable
from gridrisk.events.hub import GAP_MAX_WAIT_S, QUEUE_SIZE, Event, EventHub, Subscription

router = APIRouter(tags=["events"])
log = logging.getLogger("gridrisk.events")

# Read at every wait, so tests can shorten it.
HEARTBEAT_S = 15.0
KEEPALIVE = b": keep-alive\n\n"
RETRY_MS = 3000
REPLAY_PAGE = 1000
# Events already queued are written to the socket together, up to this many per write.
COALESCE = 256
MAX_ID = 2**63 - 1

# One event as a client's EventSource parses it (OpenAPI 3.2 `itemSchema` for text/event-stream).
_SSE_ITEM = {
    "type": "object",
    "properties": {
        "data": {"type": "string", "contentMediaType": "application/json"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}

DESCRIPTION = f"""
A `text/event-stream` of the service's live events, in commit order, each as
`id: <events.id>` / `event: <kind>` / `data: <JSON payload>`. Kinds (filter with `?kinds=`):
- `cell_colour` `{{"layer", "code", "old", "new", "at"}}`: one per cell whose colour changed;
- `feature_changed` `{{"collection", "op", "count", "ids", "bbox"}}`: one per writing statement on
  risk_sources, shelters or hazard_points, with one `[minx, miny, maxx, maxy]` per row (old and new
  geometry); past 500 rows `ids` is null and `bbox` holds one box around them all;
- `layer_changed` `{{"layer", "version"}}`: a grid or admin layer was re-imported;
- `cell_workers` `{{"op", "count", "cells"}}`: the grid workers of these `[layer, code]` cells changed
  (one per writing statement; past 500 cells `cells` is null);
- `warning` and `work_order` `{{"op", "id", "warning", "status", ...}}`: targeted warnings and their orders;
- `work_order_overdue` `{{"id", "warning", "status", "action", "due_at", "target", "responsible", ...}}`:
  an unfinished order passed its due time (once per due time, within the expiry job's interval);
- `shelter_status` `{{"id", "code", "name", "status", "old_status", "capacity", "occupancy", "free"}}`:
  a shelter's status changed (e.g. `full` when its last place was taken).

- The stream opens with `event: ready` carrying `id:` = the position it starts from (so a
  reconnect resumes from there even if nothing happened) and a `retry: {RETRY_MS}` hint. A
  `: keep-alive` comment follows every {HEARTBEAT_S:.0f} s of silence.
- **Resume**: send `Last-Event-ID` (browsers do on reconnect) or `?last_event_id=` (for clients that
  cannot set headers; the header wins). Every retained event after it is replayed, then the stream
  goes live, with no gap and no duplicate. Without either, the stream starts from now.
- If events after the resume point may have been pruned (they are kept 7 days), or the id is not
  from this database, `event: replay_gap` says so first: reload the state you follow.
- A client that falls {QUEUE_SIZE:,} events behind is disconnected; it resumes by id like any reconnect.
- Rarely, a transaction that holds an event id open for over {GAP_MAX_WAIT_S:g} s lets later events
  go first; its own events then follow **without** an `id:` line, so that they never move the
  resume point back.
"""


def _block(*, event: str, data: dict, event_id: int | None = None, retry: int | None = None) -> bytes:
    """One SSE block of the stream's own (ready, replay_gap)."""
    lines = []
    if retry is not None:
        lines.append(f"retry: {retry}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"event: {event}", "data: " + orjson.dumps(data).decode()]
    return ("\n".join(lines) + "\n\n").encode()


def _parse_kinds(kinds: str | None) -> list[str] | None:
    """?kinds=a,b as a list (None: every kind); 422 for anything that is not a kind name."""
    if kinds is None:
        return None
    names = [k.strip() for k in kinds.split(",") if k.strip()]
    bad = [k for k in names if not k.replace("_", "").replace(".", "").replace("-", "").isalnum()]
    if not names or bad:
        raise InvalidInput(
            "kinds must be a comma-separated list of event kinds, e.g. cell_colour,work_order.",
            errors=[{"field": "kinds", "message": f"not an event kind: {', '.join(bad) or '(empty)'}"}],
        )
    return names


def _parse_resume(header: str | None, query: int | None) -> int | None:
    """The resume point: the Last-Event-ID header (a reconnecting browser's), else ?last_event_id=."""
    if header is not None and header.strip():
        value = header.strip()
        if not value.isascii() or not value.isdigit() or int(value) > MAX_ID:
            raise InvalidInput(
                "Last-Event-ID must be the id of an event this stream sent (a non-negative integer).",
                errors=[{"field": "Last-Event-ID", "location": "header", "message": "not an event id"}],
            )
        return int(value)
    return query


async def _check_layer(pool, layer: str) -> None:
    """422 naming the known layers when ?layer= is none of them (a typo would otherwise stay silent)."""
    async with pool.connection() as conn:
        cur = await conn.execute(sql("layer_known"), {"layer": layer})
        row = await cur.fetchone()
    if not row["found"]:
        raise InvalidInput(
            f"Unknown layer '{layer}'. Known layers: {row['known'] or 'none'}.",
            errors=[{"field": "layer", "message": "unknown layer"}],
        )


async def _replay_notice(pool, resume: int) -> dict | None:
    """Why a replay from RESUME cannot be complete, if it cannot (ids unknown here, or pruned)."""
    async with pool.connection() as conn:
        cur = await conn.execute(sql("events_bounds"), {"resume": resume})
        row = await cur.fetchone()
    oldest, newest = row["oldest"], row["newest"]
    if resume > (newest or 0):
        return {"last_event_id": resume, "reason": "unknown_id", "detail": "not an id of this database"}
    # A row the client received only disappears by pruning, which goes oldest first: if it is still
    # there, nothing after it is missing. (Comparing with the oldest id alone is not enough: ids
    # right after it may belong to transactions still open, or rolled back.)
    if resume == 0 or row["present"]:
        return None
    if (oldest is None and resume < newest) or (oldest is not None and oldest > resume + 1):
        return {
            "last_event_id": resume,
            "reason": "pruned",
            "detail": "events after this id may have been pruned; reload the state you follow",
            "oldest_retained": oldest,
        }
    return None


@router.get(
    "/events",
    response_class=StreamingResponse,
    summary="Live events (Server-Sent Events): cell colour changes within a second of commit",
    description=DESCRIPTION,
    responses={
        200: {
            "description": "An endless event stream",
            "content": {"text/event-stream": {"itemSchema": _SSE_ITEM}},
        },
        503: {"description": "The database is unreachable", "content": {"application/problem+json": {}}},
    },
)
async def events(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    _: Reader,
    kinds: Annotated[
        str | None,
        Query(max_length=500, description="Only these kinds, comma-separated (e.g. cell_colour,work_order)"),
    ] = None,
    layer: Annotated[
        str | None,
        Query(max_length=64, description="Only events whose payload names this layer (e.g. safety)"),
    ] = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=MAX_ID, description="Resume after this id (when the header cannot be sent)"),
    ] = None,
    last_event_id_header: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID", max_length=32, description="Resume after this id (wins over the query)"
        ),
    ] = None,
) -> StreamingResponse:
    kind_list = _parse_kinds(kinds)
    resume = _parse_resume(last_event_id_header, last_event_id)
    if layer is not None:
        await _check_layer(pool, layer)
    hub: EventHub = request.app.state.event_hub
    if not await hub.wait_ready(settings.pool_timeout_s):
        raise ServiceUnavailable(
            "The live event feed cannot reach the database right now; retry shortly.",
            headers={"Retry-After": "3"},
        )
    notice = await _replay_notice(pool, resume) if resume is not None else None
    if notice is not None and notice["reason"] == "unknown_id":
        resume = None  # start from now, and say so
    # The subscription is made inside the generator, so a client gone before the first byte
    # leaves nothing registered.
    stream = _stream(hub, pool, resume=resume, kinds=kind_list, layer=layer, notice=notice)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    hub: EventHub,
    pool,
    *,
    resume: int | None,
    kinds: list[str] | None,
    layer: str | None,
    notice: dict | None,
) -> AsyncIterator[bytes]:
    """ready, [replay_gap], the replay from the table, then the live queue with keep-alives."""
    sub = hub.subscribe(after=resume, kinds=kinds, layer=layer)
    try:
        position = sub.start if resume is None else resume
        yield _block(event="ready", data={"last_event_id": position}, event_id=position, retry=RETRY_MS)
        if notice is not None:
            yield _block(event="replay_gap", data=notice)
        if resume is not None and resume < sub.start:
            # Everything up to sub.start comes from the table, everything after from the queue
            # (which has been filling since subscribe): the two meet exactly at sub.start.
            try:
                async for chunk in _replay(pool, sub, resume, kinds, layer):
                    yield chunk
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                log.warning("event replay failed (%s); ending the stream so the client resumes", exc)
                return
        while True:
            try:
                async with asyncio.timeout(HEARTBEAT_S):
                    event = await sub.queue.get()
            except TimeoutError:
                yield KEEPALIVE
                continue
            batch = [event]
            while len(batch) < COALESCE and not sub.queue.empty():
                batch.append(sub.queue.get_nowait())
            ended = None in batch  # dropped as too slow, or the hub stopped: the client resumes by id
            if ended:
                batch = batch[: batch.index(None)]
            if chunk := b"".join(e.wire for e in batch if sub.fresh(e)):
                yield chunk
            if ended:
                return
    finally:
        hub.unsubscribe(sub)


async def _replay(
    pool, sub: Subscription, after: int, kinds: list[str] | None, layer: str | None
) -> AsyncIterator[bytes]:
    """The retained events in (AFTER, sub.start], a page per round trip (no connection held meanwhile)."""
    while after < sub.start:
        async with pool.connection() as conn:
            cur = await conn.execute(
                sql("events_replay"),
                {"after": after, "upto": sub.start, "kinds": kinds, "layer": layer, "limit": REPLAY_PAGE},
            )
            rows = await cur.fetchall()
        if not rows:
            return
        for row in rows:
            sub.note_replayed(row["id"])
        yield b"".join(Event.make(r["id"], r["kind"], r["layer"], r["data"]).wire for r in rows)
        after = rows[-1]["id"]
        if len(rows) < REPLAY_PAGE:
            return
