"""The live event hub: one LISTEN connection per process fans the `events` outbox out to SSE subscribers.

The outbox rows are written by the database in the same transaction as the change they report
(`risk_recolour`), which then `pg_notify('gridrisk_events')`s. The hub wakes on that notification,
or at least every `POLL_S`, reads the rows after the last id it delivered, and puts them on each
subscriber's bounded queue. Everything runs on the app's event loop: fan-out is synchronous
(`put_nowait`), so a subscriber registers between two fan-outs and knows exactly where it starts.

Ids are drawn from a sequence when a row is written, not when it is committed: a transaction can
commit id 11 while id 10 is still open (or rolled back). Delivering 11 then would lose 10 for good
(clients resume after the highest id they saw), so the hub holds back at such a gap until every
transaction that could still fill it has ended, for at most `GAP_MAX_WAIT_S`. Rows that commit
after that are delivered late, without an SSE id (so they never move a client's resume point back).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("gridrisk.events")

CHANNEL = "gridrisk_events"
# Fallback poll: catches anything a missed notification (or a reconnect) would otherwise delay.
POLL_S = 1.0
# While a gap is pending: how often to check whether the transactions that could fill it ended.
GAP_POLL_S = 0.05
# The longest a gap holds back later events; after it, they go out and the gap is watched for late rows.
GAP_MAX_WAIT_S = 5.0
# How long skipped ids are watched for a late commit.
LATE_WATCH_S = 300.0
BATCH = 1000
# Per subscriber: a client this far behind is dropped (its stream ends; it resumes by Last-Event-ID).
QUEUE_SIZE = 10_000
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0
# A read on the listening connection that takes longer means the connection is dead: reconnect.
IO_TIMEOUT_S = 10.0

_ROWS_AFTER = """
SELECT id, kind, payload->>'layer' AS layer, payload::text AS data
FROM events WHERE id > %(after)s ORDER BY id LIMIT %(limit)s
"""
_ROWS_BETWEEN = """
SELECT id, kind, payload->>'layer' AS layer, payload::text AS data
FROM events WHERE id BETWEEN %(lo)s AND %(hi)s AND id <> ALL(%(seen)s::bigint[]) ORDER BY id LIMIT %(limit)s
"""
# Where "now" is: the newest committed row; for an empty outbox, the sequence (nothing to deliver).
_START_ID = """
SELECT coalesce((SELECT max(id) FROM events),
                pg_sequence_last_value(pg_get_serial_sequence('events', 'id')::regclass), 0)
"""
# The transactions of this database in progress right now: any of them may hold an uncommitted id.
# (Per database, not the server-wide snapshot: other databases' long jobs must not stall this feed.
# backend_xid is shown for every role's sessions. Prepared two-phase transactions are not listed;
# GAP_MAX_WAIT_S bounds that case.)
_RUNNING_XIDS = """
SELECT coalesce(array_agg(backend_xid::text), '{}') FROM pg_stat_activity
WHERE datname = current_database() AND backend_xid IS NOT NULL
"""
_ANY_RUNNING = """
SELECT EXISTS (SELECT 1 FROM pg_stat_activity
               WHERE datname = current_database() AND backend_xid::text = ANY(%s::text[]))
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One outbox row, with its SSE wire form built once for every subscriber."""

    id: int
    kind: str
    layer: str | None
    data: str
    late: bool = False
    wire: bytes = field(default=b"", compare=False)

    @classmethod
    def make(cls, event_id: int, kind: str, layer: str | None, data: str, *, late: bool = False) -> Event:
        kind = " ".join(str(kind).split())  # an event name must be one line
        lines = [f"event: {kind}"] if late else [f"id: {event_id}", f"event: {kind}"]
        # SSE lines end only at CR/LF (str.splitlines would also split at U+2028 inside a JSON string).
        lines += [f"data: {line}" for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
        return cls(event_id, kind, layer, data, late, ("\n".join(lines) + "\n\n").encode())

    @classmethod
    def from_row(cls, row: Any, *, late: bool = False) -> Event:
        """From a (id, kind, layer, data) tuple row."""
        return cls.make(row[0], row[1], row[2], row[3], late=late)


class Subscription:
    """One client's view of the hub: its filters, its starting point and its bounded queue."""

    __slots__ = ("queue", "start", "after", "kinds", "layer", "watch", "skip_late", "dropped")

    def __init__(
        self, *, start: int, after: int | None, kinds: Iterable[str] | None, layer: str | None, size: int
    ) -> None:
        # None on the queue means "the stream is over" (dropped as too slow, or the hub closed).
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(size)
        # The hub's high-water mark when this subscription was registered: live events are above it.
        self.start = start
        # Live events at or below this were already seen by the client (it may be ahead of this hub).
        self.after = start if after is None else max(after, start)
        self.kinds = frozenset(kinds) if kinds else None
        self.layer = layer
        # Id ranges the hub was watching for late rows at registration, and those the replay sent.
        self.watch: list[tuple[int, int]] = []
        self.skip_late: set[int] = set()
        self.dropped = False

    def matches(self, kind: str, layer: str | None) -> bool:
        """Whether the client's filters (?kinds=, ?layer=) let an event of KIND and LAYER through."""
        return (self.kinds is None or kind in self.kinds) and (self.layer is None or layer == self.layer)

    def wants(self, event: Event) -> bool:
        """Whether the hub should queue EVENT for this subscriber."""
        if not self.matches(event.kind, event.layer):
            return False
        return event.id not in self.skip_late if event.late else event.id > self.after

    def fresh(self, event: Event) -> bool:
        """False for a late event the replay has already sent (checked when it is read off the queue:
        the hub may queue it before the replay reaches it)."""
        return not (event.late and event.id in self.skip_late)

    def note_replayed(self, event_id: int) -> None:
        """Remember a replayed id the hub may still deliver late, so the client never gets it twice."""
        if any(lo <= event_id <= hi for lo, hi in self.watch):
            self.skip_late.add(event_id)


@dataclass(slots=True)
class _Gap:
    first: int  # the first missing id
    since: float
    xids: list[str] | None = None  # transactions in progress just after the gap was seen
    timed_out: bool = False


@dataclass(slots=True)
class _LateWatch:
    lo: int
    hi: int
    until: float
    seen: set[int] = field(default_factory=set)


class EventHub:
    """One per app process: a dedicated LISTEN connection, a reader task, and the subscriptions."""

    def __init__(self, conninfo: str, *, pool: AsyncConnectionPool | None = None) -> None:
        self.conninfo = conninfo
        self.pool = pool
        self.last_id: int | None = None  # the high-water mark: every id up to it has been fanned out
        self.connected = False
        self._subs: set[Subscription] = set()
        self._ready = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._closed = False
        self._gap: _Gap | None = None
        self._late: list[_LateWatch] = []

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once stopped (aclose, the pool closed, or a bug); `hub_for` then makes a new one."""
        return self._closed

    def start(self) -> None:
        """Start the reader task if it is not running (idempotent; called on every subscribe)."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gridrisk-event-hub")

    async def wait_ready(self, within: float) -> bool:
        """Start if needed; wait up to WITHIN s until the hub knows where "now" is (False: DB unreachable)."""
        self.start()
        try:
            async with asyncio.timeout(within):
                await self._ready.wait()
        except TimeoutError:
            return False
        return not self._closed

    async def aclose(self) -> None:
        """Stop the reader, close the connection and end every subscriber's stream."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._end_all()

    def stats(self) -> dict[str, Any]:
        """A snapshot for logs and health checks."""
        return {
            "connected": self.connected,
            "last_id": self.last_id,
            "subscribers": len(self._subs),
            "gap_pending": self._gap is not None,
            "late_watches": len(self._late),
        }

    # -- subscriptions --------------------------------------------------------------------------

    def subscribe(
        self,
        *,
        after: int | None = None,
        kinds: Iterable[str] | None = None,
        layer: str | None = None,
        size: int | None = None,
    ) -> Subscription:
        """Register a subscriber now; it receives every event above the current high-water mark.

        Call only once `wait_ready` is true. Registration and fan-out both run on the event loop
        without awaiting in between, so nothing can slip between `sub.start` and the first live
        event: a replay of (Last-Event-ID, sub.start] from the table followed by the queue is
        complete and free of duplicates.
        """
        if self.last_id is None:
            raise RuntimeError("the event hub is not ready")
        sub = Subscription(start=self.last_id, after=after, kinds=kinds, layer=layer, size=size or QUEUE_SIZE)
        sub.watch = [(w.lo, w.hi) for w in self._late]
        self._subs.add(sub)
        if self._closed:
            self._end(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a subscriber (its stream ended); idempotent."""
        self._subs.discard(sub)

    def _end(self, sub: Subscription) -> None:
        """Finish a subscriber's stream: drop what it has not read (it resumes by id) and wake it."""
        self._subs.discard(sub)
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    def _end_all(self) -> None:
        for sub in list(self._subs):
            self._end(sub)

    def _fan_out(self, events: list[Event]) -> None:
        """Queue EVENTS for every subscriber that wants them, without ever waiting."""
        if not events:
            return
        for sub in list(self._subs):
            for event in events:
                if not sub.wants(event):
                    continue
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    # Never block the others for one slow client: end its stream. Its last id is
                    # the last event it actually received, so it reconnects and replays the rest.
                    log.info("dropping a slow event subscriber (%d events behind)", sub.queue.qsize())
                    sub.dropped = True
                    self._end(sub)
                    break

    # -- the reader -----------------------------------------------------------------------------

    def _pool_gone(self) -> bool:
        return self._closed or (self.pool is not None and self.pool.closed)

    async def _run(self) -> None:
        """Connect, LISTEN, read and fan out; on any connection failure, reconnect with backoff."""
        backoff = RECONNECT_MIN_S
        try:
            while not self._pool_gone():
                conn: psycopg.AsyncConnection | None = None
                try:
                    conn = await psycopg.AsyncConnection.connect(
                        self.conninfo,
                        autocommit=True,
                        connect_timeout=5,
                        application_name="gridrisk-events",
                        # Notice a silently dead network within a minute even while idle.
                        keepalives=1,
                        keepalives_idle=30,
                        keepalives_interval=10,
                        keepalives_count=3,
                    )
                    async with asyncio.timeout(IO_TIMEOUT_S):
                        await conn.execute(f"SET statement_timeout = {int(IO_TIMEOUT_S * 1000)}")
                        # LISTEN before the first read: a commit between the two is then both
                        # notified and read, never neither.
                        await conn.execute(f"LISTEN {CHANNEL}")
                        if self.last_id is None:
                            cur = await conn.execute(_START_ID)
                            self.last_id = int((await cur.fetchone())[0])
                            self._ready.set()
                    if backoff > RECONNECT_MIN_S:
                        log.info("event hub reconnected; resuming after id %s", self.last_id)
                    self.connected, backoff = True, RECONNECT_MIN_S
                    while not self._pool_gone():
                        async with asyncio.timeout(IO_TIMEOUT_S):
                            wait = await self._read(conn)
                        await self._wait_for_notify(conn, wait)
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    if self._pool_gone():
                        break
                    log.warning(
                        "event hub lost the database (%s); reconnecting in %.1f s",
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                        backoff,
                    )
                finally:
                    self.connected = False
                    if conn is not None:
                        await conn.close()
                if self._pool_gone():
                    break
                await asyncio.sleep(backoff * (0.75 + random.random() / 2))  # noqa: S311 (jitter)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug, not an outage: say so loudly, end the streams (clients retry)
            log.exception("event hub failed")
        finally:
            self._closed = True
            self._ready.set()  # nobody waits forever on a dead hub; wait_ready reports it closed
            self._end_all()

    async def _wait_for_notify(self, conn: psycopg.AsyncConnection, seconds: float) -> None:
        """Return on a notification (or one that arrived during the last read), or after SECONDS."""
        gen = conn.notifies(timeout=seconds, stop_after=1)
        try:
            async for _ in gen:
                pass
        finally:
            await gen.aclose()

    async def _read(self, conn: psycopg.AsyncConnection) -> float:
        """Fan out committed rows past the high-water mark, in id order; return the next wait."""
        await self._read_late(conn)
        while True:
            gap = self._gap
            gap_dead = False
            if gap is not None:
                if time.monotonic() - gap.since >= GAP_MAX_WAIT_S:
                    gap_dead = gap.timed_out = True
                elif gap.xids is not None:
                    cur = await conn.execute(_ANY_RUNNING, (gap.xids,))
                    gap_dead = not (await cur.fetchone())[0]
            # This read's snapshot is newer than the check above: if every transaction that could
            # fill the gap has ended, a row still missing now will never come.
            cur = await conn.execute(_ROWS_AFTER, {"after": self.last_id, "limit": BATCH})
            rows = await cur.fetchall()
            batch: list[Event] = []
            stalled = False
            for row in rows:
                expected = self.last_id + 1
                if row[0] > expected:
                    if self._gap is None or self._gap.first != expected:
                        self._gap = _Gap(first=expected, since=time.monotonic())
                        stalled = True
                        break
                    if not gap_dead:
                        stalled = True
                        break
                    if self._gap.timed_out:
                        log.warning(
                            "events %d-%d still uncommitted after %.1f s; later events go first,"
                            " these follow without an id if they commit",
                            expected,
                            row[0] - 1,
                            GAP_MAX_WAIT_S,
                        )
                        self._late.append(_LateWatch(expected, row[0] - 1, time.monotonic() + LATE_WATCH_S))
                    self._gap = None
                    gap_dead = False  # a further gap in this batch is a new one
                batch.append(Event.from_row(row))
                self.last_id = row[0]
            if self._gap is not None and self._gap.first <= self.last_id:
                self._gap = None  # the missing row committed and went out in order
            self._fan_out(batch)
            if stalled:
                if self._gap.xids is None:
                    # Taken after the read that found the gap: a transaction holding a missing id
                    # drew it before that read, so it is either finished or listed here.
                    cur = await conn.execute(_RUNNING_XIDS)
                    self._gap.xids = list((await cur.fetchone())[0])
                    if not self._gap.xids:
                        continue  # nothing can fill it any more: confirm with one more read
                return GAP_POLL_S
            if len(rows) < BATCH:
                return POLL_S

    async def _read_late(self, conn: psycopg.AsyncConnection) -> None:
        """Deliver rows that committed after their gap was given up on; forget expired watches."""
        if not self._late:
            return
        now = time.monotonic()
        self._late = [w for w in self._late if w.until > now]
        events: list[Event] = []
        for watch in list(self._late):
            cur = await conn.execute(
                _ROWS_BETWEEN, {"lo": watch.lo, "hi": watch.hi, "seen": list(watch.seen), "limit": BATCH}
            )
            for row in await cur.fetchall():
                watch.seen.add(row[0])
                events.append(Event.from_row(row, late=True))
            if len(watch.seen) > watch.hi - watch.lo:
                self._late.remove(watch)
        self._fan_out(events)


def hub_for(app: Any) -> EventHub:
    """The app's hub (created on first use, for the app's current pool); started lazily."""
    pool = app.state.pool
    hub: EventHub | None = getattr(app.state, "event_hub", None)
    if hub is None or hub.closed or hub.pool is not pool:
        hub = EventHub(pool.conninfo, pool=pool)
        app.state.event_hub = hub
    return hub


async def close_hub(app: Any) -> None:
    """Stop the app's hub if one was started (for the lifespan's shutdown)."""
    hub: EventHub | None = getattr(app.state, "event_hub", None)
    if hub is not None:
        await hub.aclose()


def prune_events(conn: psycopg.Connection, keep_days: float = 7) -> int:
    """Delete outbox rows older than KEEP_DAYS (in the caller's transaction); return how many.

    Clients resuming from an id older than that are told their replay has a gap (`replay_gap`).
    """
    if keep_days < 0:
        raise ValueError("keep_days must be ≥ 0")
    cur = conn.execute(
        "DELETE FROM events WHERE at < now() - make_interval(secs => %s)", (float(keep_days) * 86400,)
    )
    return cur.rowcount
