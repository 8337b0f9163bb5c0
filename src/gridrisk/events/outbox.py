"""The one reader of the `events` outbox: every committed event, once, to every consumer of the process.

The database writes an `events` row in the transaction that makes the change it reports (triggers),
then `pg_notify('gridrisk_events')`s. One `OutboxReader` per app process, made and closed in the
lifespan, reads those rows for everything that follows them: the live event hub (`/events`), the
tile cache, and whatever else keeps state current from the outbox.

How to consume it:

- `reader.subscribe(on_batch, on_close=None)`. ON_BATCH(batch) runs after every read, on the event
  loop, and must not await or block: it gets the events that read found, each event exactly once
  and as soon as it is visible (in id order, except ids that commit late, which come when they do).
  `batch.reset` is true on the reader's first read and when it lost track of ids that may still
  commit: drop whatever you derived from earlier events. ON_CLOSE() runs once when the reader stops.
- `await reader.catch_up()` returns once every event committed before the call has been delivered
  to every consumer: call it before answering from consumer state (read-after-write). Concurrent
  callers share reads, so this costs one query however many requests wait.
- `reader.reads` numbers the reads (batches carry theirs); state loaded from the tables after read N
  completed must still apply every batch numbered above N. `reader.complete_from` is the first read
  from which no commit can be missed (None while the reader cannot tell). A consumer that needs
  strict id order (SSE resume points) holds an event back while a lower id is in `reader.missing`.

A consumer that keeps state current, in the manner of the tile cache (tiles/cache.py):

    class CellIndex:
        def __init__(self, reader: OutboxReader) -> None:
            self.reader = reader
            reader.subscribe(self.on_batch)  # in the lifespan, before reader.start()
        def on_batch(self, batch: Batch) -> None:
            if batch.reset:
                self.clear()
            for event in batch.events:  # event.boxes None: the whole layer or collection
                self.forget(event.kind, event.target, event.boxes)
        async def lookup(self, lon: float, lat: float):
            await self.reader.catch_up()  # every acknowledged write is applied by now

Concurrency, the subtle part:

- Ids are drawn when a row is written, not when it commits: id 10 may become visible after id 11.
  The reader delivers 11 at once and remembers 10 as missing, asking for it again on every read
  until every transaction that could still commit it has ended. A read lists this database's
  running transactions after its snapshot (a writer of a missing id is among them or has committed);
  once a later read finds none of them running, every row they wrote is visible to the read after
  it, which still asks for the missing ids and only then forgets them. Every id up to `position`
  not in `missing` has thus been delivered or will never commit.
- At start, ids older than the oldest transaction running then (with a minute's margin) are settled;
  the ones between it and the newest that are not visible are missing like any gap. Writers whose
  start this role cannot see, or too many missing ids, are waited for: `complete_from` stays None
  until every writer running then has ended.
- One read at a time. A dedicated connection LISTENs: a notification wakes a read on it, else one
  runs every `POLL_S` (every `GAP_POLL_S` while a young gap waits for its writers). Reads asked for
  while it waits for notifications go through the app's pool.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import psycopg
from psycopg.rows import dict_row, tuple_row

from gridrisk.db.pool import connect_dedicated
from gridrisk.db.sql_files import sql
from gridrisk.events.probe import NewestProbe, ProbeFailed

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("gridrisk.events")

CHANNEL = "gridrisk_events"
# Fallback poll: catches anything a missed notification (or a reconnect) would otherwise delay.
POLL_S = 1.0
# While a gap is younger than GAP_FAST_S: how often to check whether its writers have ended.
GAP_POLL_S = 0.05
GAP_FAST_S = 5.0
# New rows per query (outbox_read*.sql have the same LIMIT); a full page is followed by another.
PAGE = 1000
# More ids missing than this (a huge rolled-back batch): forget them and wait for every writer.
MAX_MISSING = 10_000
# Clocks of one server, but a margin all the same: an id drawn this long before a transaction began
# cannot be one of that transaction's.
START_MARGIN = dt.timedelta(minutes=1)
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0
# A read or LISTEN that takes longer means the connection is dead.
IO_TIMEOUT_S = 10.0

Box = tuple[float, float, float, float]  # lon/lat (minx, miny, maxx, maxy)


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One outbox row: id, kind, the layer or collection it concerns, its payload and where it happened."""

    id: int
    kind: str
    layer: str | None  # payload->>'layer'
    target: str | None  # the layer, else the collection, the event concerns
    data: str  # the payload as JSON text
    boxes: tuple[Box, ...] | None = None  # lon/lat boxes that changed (None: unknown, or not spatial)

    @classmethod
    def from_row(cls, row: tuple) -> OutboxEvent:
        """From an outbox_read*.sql row (xids, id, kind, layer, target, data, cell_box)."""
        _, event_id, kind, layer, target, data, cell_box = row
        if cell_box is not None:
            boxes: tuple[Box, ...] | None = (tuple(cell_box),)  # type: ignore[assignment]
        elif kind == "feature_changed":
            boxes = _feature_boxes(data)
        else:
            boxes = None
        return cls(event_id, kind, layer, target, data, boxes)


def _feature_boxes(data: str) -> tuple[Box, ...] | None:
    """The `bbox` of a feature_changed payload, one box per row; None when absent or malformed."""
    try:
        boxes = orjson.loads(data).get("bbox")
        if not isinstance(boxes, list) or not boxes:
            return None
        out = tuple(tuple(map(float, b)) for b in boxes if isinstance(b, list) and len(b) == 4)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None
    return out if len(out) == len(boxes) else None  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Batch:
    """What one read found, as handed to every consumer."""

    read: int  # the read's number (1, 2, ...)
    events: list[OutboxEvent]  # new events, each delivered once
    position: int  # the newest id read
    reset: bool = False  # the first read, or ids that may still commit were forgotten


@dataclass(slots=True)
class _Watch:
    """Missing ids up to UPTO, forgotten once the transactions that may still commit them have ended."""

    upto: int
    xids: frozenset[int] | None = None  # this database's transactions running at read `listed`
    listed: int = 0  # (xids None: the next read lists them)
    ended: int | None = None  # the first read at which none of them ran: every later read sees their rows
    since: float = field(default_factory=time.monotonic)

    def advance(self, n: int, running: frozenset[int] | None) -> bool:
        """Update with read N's running transactions (None: not listed); True once settled."""
        if self.ended is not None:
            return n > self.ended
        if running is None:
            return False
        if self.xids is None:
            self.xids, self.listed = running, n
            if not running:
                self.ended = n
        elif n > self.listed and not self.xids & running:
            self.ended = n
        return False


OnBatch = Callable[[Batch], None]
OnClose = Callable[[], None]


class OutboxReader:
    """Reads the outbox in id order, tracks ids that commit late, and hands batches to its consumers."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self.position: int | None = None  # the newest id read (None: not started)
        self.missing: set[int] = set()  # ids at or below `position` not seen that may still commit
        self.watches: list[_Watch] = []
        self.blind: _Watch | None = None  # writers waited for because their ids are unknown
        self.complete_from: int | None = None  # from this read on, no commit can be missed
        self.reads = 0  # reads completed
        self.connected = False  # the LISTEN connection is up
        self._spare: psycopg.AsyncConnection | None = None  # the LISTEN connection, while free
        self.probe = NewestProbe(pool.conninfo)  # the cheap read, when nothing is missing
        self._consumers: dict[OnBatch, OnClose | None] = {}
        self._next: asyncio.Future[int] | None = None
        self._pump: asyncio.Task | None = None
        self._listener: asyncio.Task | None = None
        self._closed = False

    def subscribe(self, on_batch: OnBatch, on_close: OnClose | None = None) -> None:
        """Call ON_BATCH after every read from now on (and ON_CLOSE once the reader stops)."""
        self._consumers[on_batch] = on_close

    def unsubscribe(self, on_batch: OnBatch) -> None:
        """Stop calling ON_BATCH (idempotent)."""
        self._consumers.pop(on_batch, None)

    @property
    def closed(self) -> bool:
        """True once stopped (aclose, or the pool closed under the listener)."""
        return self._closed

    async def catch_up(self) -> int:
        """Deliver every event committed before this call; return the number of the read that did."""
        # A caller waits for the next read that starts after it arrived (never one already running),
        # so one query serves every caller that came meanwhile. (While `complete_from` is None, an
        # id the reader could not track may still commit unseen: keep nothing you cannot check.)
        if self._closed:
            raise psycopg.OperationalError("the outbox reader is closed")
        fut = self._next
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = self._next = loop.create_future()
            fut.add_done_callback(_retrieve)
            if self._pump is None:
                self._pump = loop.create_task(self._run(), name="gridrisk-outbox-read")
        return await asyncio.shield(fut)

    def _deliver(self, batch: Batch) -> None:
        for on_batch in list(self._consumers):
            try:
                on_batch(batch)
            except Exception:  # one consumer's bug must not starve the others
                log.exception("an outbox consumer failed on read %d", batch.read)

    def start(self) -> None:
        """Start listening for notifications (each wakes a read; idempotent)."""
        if self._listener is None and not self._closed:
            self._listener = asyncio.get_running_loop().create_task(self._listen(), name="gridrisk-outbox")

    async def aclose(self) -> None:
        """Stop listening and reading; consumers' ON_CLOSE runs."""
        self._closed = True
        for task in (self._listener, self._pump):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._listener = None
        await self.probe.aclose()
        self._shut()

    def _shut(self) -> None:
        self._closed = True
        closers = [c for c in self._consumers.values() if c is not None]
        self._consumers.clear()
        for on_close in closers:
            try:
                on_close()
            except Exception:
                log.exception("an outbox consumer failed to close")

    def _gone(self) -> bool:
        return self._closed or self.pool.closed

    def stats(self) -> dict[str, Any]:
        """A snapshot for logs and health checks."""
        return {
            "connected": self.connected,
            "reads": self.reads,
            "position": self.position,
            "missing": len(self.missing),
            "complete": self.complete_from is not None,
            "probes": self.probe.probes,
            "probe_up": self.probe.up,
        }

    async def _run(self) -> None:
        try:
            while self._next is not None:
                fut, self._next = self._next, None
                try:
                    n = await self._read()
                except asyncio.CancelledError:
                    fut.cancel()
                    raise
                except Exception as exc:  # the waiters answer it (503 for a lost database)
                    fut.set_exception(exc)
                else:
                    fut.set_result(n)
        finally:
            self._pump = None
            if self._next is not None and not self._next.done():
                self._next.cancel()
                self._next = None

    async def _read(self) -> int:
        """One read: the probe's when it may stand for one, else on the LISTEN connection when it is
        free (no checkout, a warm backend), else pooled."""
        if self._plain():
            # Nothing missing, nothing waited for: the read would ask for the ids above `position`
            # alone, and there are none when the newest committed id is not above it.
            try:
                newest = await self.probe.newest()
            except ProbeFailed:
                pass
            else:
                # Reads run one at a time: `position` is still the one the probe was asked about.
                if newest is None or newest <= self.position:  # type: ignore[operator]
                    n = self.reads = self.reads + 1
                    self._deliver(Batch(n, [], self.position, False))  # type: ignore[arg-type]
                    return n
        conn = self._spare
        if conn is not None:
            return await self._read_on(conn)
        async with self.pool.connection() as conn:
            return await self._read_on(conn)

    def _plain(self) -> bool:
        """Started and complete, with no id missing and no writer waited for."""
        return (
            self.position is not None
            and self.complete_from is not None
            and not self.missing
            and not self.watches
            and self.blind is None
        )

    async def _read_on(self, conn: psycopg.AsyncConnection) -> int:
        """The start, or pages of new (and late) events until a page is not full."""
        if self.position is None:
            return await self._start(conn)
        while True:
            n = self.reads + 1
            # Every missing id is below some watch's `upto`: no watch, nothing to ask again for.
            if self.watches or self.blind is not None:
                query = sql("outbox_read_gaps")
                params = {"after": self.position, "missing": sorted(self.missing)}
            else:
                query, params = sql("outbox_read"), {"after": self.position}
            async with conn.cursor(row_factory=tuple_row) as cur:
                await cur.execute(query, params, prepare=True)
                rows = await cur.fetchall()
            events, new, reset = self._apply(n, rows)
            # No await from here to the end of the delivery: a consumer that notes `reads`
            # never sees a read counted whose events it has not been given.
            self.reads = n
            self._deliver(Batch(n, events, self.position, reset))  # type: ignore[arg-type]
            if new < PAGE:
                return n

    async def _start(self, conn: psycopg.AsyncConnection) -> int:
        """Start after the newest id, knowing which older ids may still commit."""
        n = self.reads + 1
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql("outbox_sessions"))
            sessions = await cur.fetchone()
            cut = (sessions["oldest"] or sessions["now"]) - START_MARGIN
            await cur.execute(sql("outbox_start"), {"cut": cut, "span": MAX_MISSING * 20})
            row = await cur.fetchone()
        newest, floor, seen = int(row["newest"]), int(row["floor"]), row["seen"]
        self.position, self.watches, self.blind, self.complete_from = newest, [], None, None
        missing = set(range(floor + 1, newest + 1)).difference(seen) if seen is not None else None
        if missing is None or len(missing) > MAX_MISSING:
            # Too far back to tell the ids apart: wait until every writer running now has ended.
            self.missing, self.blind = set(), _Watch(newest)
        else:
            self.missing = missing
            if missing:
                self.watches.append(_Watch(newest))
            hidden = frozenset(sessions["hidden"])
            if hidden:
                # Listed before this read's snapshot: once they have ended, the next read sees their rows.
                self.blind = _Watch(newest, hidden, listed=n - 1)
            else:
                self.complete_from = n
        self.reads = n
        self._deliver(Batch(n, [], newest, reset=True))
        return n

    def _apply(self, n: int, rows: list[tuple]) -> tuple[list[OutboxEvent], int, bool]:
        """Read N's rows: (its events, how many ids were new, whether missing ids were forgotten)."""
        assert self.position is not None
        running = frozenset(rows[0][0]) if rows and rows[0][0] is not None else None
        events: list[OutboxEvent] = []
        new, gaps, lost = 0, False, False
        for row in rows:
            event_id = row[1]
            if event_id is None:
                continue
            if event_id in self.missing:
                self.missing.discard(event_id)
            elif event_id > self.position:
                new += 1
                skipped = event_id - self.position - 1
                if skipped and len(self.missing) + skipped > MAX_MISSING:
                    lost = True
                elif skipped:
                    self.missing.update(range(self.position + 1, event_id))
                    gaps = True
                self.position = event_id
            else:
                continue  # not asked for
            events.append(OutboxEvent.from_row(row))
        # A settled watch's ids can no longer commit: stop asking for them (and for any below).
        settled = [w.upto for w in self.watches if w.advance(n, running)]
        if settled:
            bound = max(settled)
            self.watches = [w for w in self.watches if w.upto > bound]
            self.missing = {i for i in self.missing if i > bound}
        if gaps:  # its writers are listed by the next read
            self.watches.append(_Watch(self.position))
        if self.missing:  # a watch with no missing id left at or below it waits for nothing
            lowest = min(self.missing)
            self.watches = [w for w in self.watches if w.upto >= lowest]
        else:
            self.watches = []
        if self.blind is not None and self.blind.advance(n, running):
            self.blind = None
            self.complete_from = n
        if lost or len(self.missing) > MAX_MISSING:
            log.warning("outbox: over %d ids uncommitted; waiting for every writer instead", MAX_MISSING)
            self.missing, self.watches, self.complete_from = set(), [], None
            self.blind = _Watch(self.position)
            return events, new, True
        return events, new, False

    def _next_wait(self) -> float:
        """How long to wait for a notification before reading anyway."""
        waits = [*self.watches, *([self.blind] if self.blind is not None else [])]
        if any(w.xids is None or w.ended is not None for w in waits):
            return 0.0  # the next read moves a watch on (lists its writers, or settles it)
        now = time.monotonic()
        return GAP_POLL_S if any(now - w.since < GAP_FAST_S for w in waits) else POLL_S

    async def _listen(self) -> None:
        """LISTEN on a connection of its own and read on every wake-up; reconnect with backoff."""
        backoff = RECONNECT_MIN_S
        try:
            while not self._gone():
                conn: psycopg.AsyncConnection | None = None
                try:
                    async with asyncio.timeout(IO_TIMEOUT_S):
                        conn = await connect_dedicated(
                            self.pool.conninfo,
                            "gridrisk-events",
                            statement_timeout_ms=int(IO_TIMEOUT_S * 1000),
                            generic_plans=True,
                        )
                        await conn.execute(f"LISTEN {CHANNEL}")
                    if backoff > RECONNECT_MIN_S:
                        log.info("outbox reader listening again")
                    self.connected, backoff = True, RECONNECT_MIN_S
                    while not self._gone():
                        # A read after LISTEN and every wake-up (a commit between is notified, read
                        # or both), on this connection: free meanwhile. A read still on it when
                        # notifies() starts keeps psycopg's lock until it ends; a NOTIFY it receives
                        # is kept for notifies(), so the next wait returns at once.
                        self._spare = conn
                        try:
                            await self._poll()
                        finally:
                            self._spare = None
                        if self._gone():
                            break
                        await self._wait_for_notify(conn, self._next_wait())
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    if self._gone():
                        break
                    log.warning(
                        "outbox reader lost its LISTEN connection (%s); reconnecting in %.1f s",
                        _first_line(exc),
                        backoff,
                    )
                except Exception:  # a bug, not an outage: say so loudly, then carry on
                    log.exception("outbox reader failed; restarting it in %.1f s", backoff)
                finally:
                    self.connected = False
                    if conn is not None:
                        await conn.close()
                if self._gone():
                    break
                await asyncio.sleep(backoff * (0.75 + random.random() / 2))  # noqa: S311 (jitter)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
        finally:
            if self._gone():
                self._shut()

    async def _poll(self) -> None:
        """One read for the listener; a failed read is logged (the next wake-up retries)."""
        try:
            async with asyncio.timeout(IO_TIMEOUT_S):
                await self.catch_up()
        except (psycopg.Error, TimeoutError) as exc:
            if not self._gone():
                log.warning("outbox read failed (%s); retrying", _first_line(exc))

    async def _wait_for_notify(self, conn: psycopg.AsyncConnection, seconds: float) -> None:
        """Return on a notification (or one that arrived during the last read), or after SECONDS."""
        gen = conn.notifies(timeout=seconds, stop_after=1)
        try:
            async for _ in gen:
                pass
        finally:
            await gen.aclose()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _retrieve(fut: asyncio.Future) -> None:
    """Mark a shared future's exception as seen (its waiters may all have gone)."""
    if not fut.cancelled():
        fut.exception()
