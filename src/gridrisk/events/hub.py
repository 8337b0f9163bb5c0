"""The live event hub: the outbox reader's events, in id order, fanned out to SSE subscribers.

The hub is one consumer of the app's `OutboxReader` (events/outbox.py), which reads the outbox,
listens for commits and tracks ids that commit late. The reader hands over each event as soon as it
is visible; SSE clients resume after the highest id they saw, so the hub releases events strictly
in id order: it holds an event back while a lower id may still commit (one in the reader's
`missing`), for at most `GAP_MAX_WAIT_S`. An id that commits after that (or one that was in flight
when the reader started) goes out late, without an SSE id, so that it never moves a client's resume
point back. Everything runs on the app's event loop and fan-out never awaits (`put_nowait`), so a
subscriber registers between two fan-outs and knows exactly where it starts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from gridrisk.events.outbox import Batch, OutboxEvent, OutboxReader

log = logging.getLogger("gridrisk.events")

# The longest a gap holds back later events; after it, they go out and the gap's ids follow late.
GAP_MAX_WAIT_S = 5.0
# Per subscriber: a client this far behind is dropped (its stream ends; it resumes by Last-Event-ID).
QUEUE_SIZE = 10_000


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
    def of(cls, event: OutboxEvent, *, late: bool = False) -> Event:
        """From an event of the outbox reader."""
        return cls.make(event.id, event.kind, event.layer, event.data, late=late)


class Subscription:
    """One client's view of the hub: its filters, its starting point and its bounded queue."""

    __slots__ = ("queue", "start", "after", "kinds", "layer", "maybe_late", "skip_late", "dropped")

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
        # Ids at or below `start` that could still come late at registration, and those the replay sent.
        self.maybe_late: frozenset[int] = frozenset()
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
        if event_id in self.maybe_late:
            self.skip_late.add(event_id)


@dataclass(slots=True)
class _Gap:
    first: int  # the first id that may still commit
    since: float


class EventHub:
    """One per app process: takes the outbox reader's batches, orders them, fans them out."""

    def __init__(self, reader: OutboxReader) -> None:
        self.reader = reader
        # The high-water mark: every id up to it has been fanned out (or given up on, then late).
        self.last_id: int | None = reader.position
        self._pending: dict[int, OutboxEvent] = {}  # read, above last_id, held back by a gap
        self._subs: set[Subscription] = set()
        self._gap: _Gap | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        reader.subscribe(self._on_batch, self._on_reader_closed)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once stopped (aclose, or the reader stopped: the pool closed)."""
        return self._closed

    async def wait_ready(self, within: float) -> bool:
        """Wait up to WITHIN s until the hub knows where "now" is (False: DB unreachable, or closed)."""
        if self.last_id is None and not self._closed:
            try:
                async with asyncio.timeout(within):
                    await self.reader.catch_up()
            except (TimeoutError, psycopg.Error):
                return False
        return not self._closed and self.last_id is not None

    async def aclose(self) -> None:
        """Stop taking events and end every subscriber's stream (the reader is the lifespan's to close)."""
        self.reader.unsubscribe(self._on_batch)
        self._on_reader_closed()

    def _on_reader_closed(self) -> None:
        self._closed = True
        self._disarm()
        self._end_all()

    def stats(self) -> dict[str, Any]:
        """A snapshot for logs and health checks."""
        return {
            "connected": self.reader.connected,
            "last_id": self.last_id,
            "subscribers": len(self._subs),
            "gap_pending": self._gap is not None,
            "held_back": len(self._pending),
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
        # Ids the replay may find committed that the reader would then also deliver late.
        sub.maybe_late = frozenset(i for i in self.reader.missing if i <= self.last_id)
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

    # -- ordering -------------------------------------------------------------------------------

    def _on_batch(self, batch: Batch) -> None:
        """Fan out what the reader found: late ids at once, the others in id order."""
        if self._closed:
            return
        if self.last_id is None:
            self.last_id = batch.position  # the reader's start: live events are the ones after it
        late: list[OutboxEvent] = []
        for event in batch.events:
            if event.id > self.last_id:
                self._pending[event.id] = event
            else:
                late.append(event)
        if late and self._subs:
            self._fan_out([Event.of(e, late=True) for e in late])
        self._release()

    def _release(self) -> None:
        """Fan out the held events next in id order; stop at a gap that may still fill, for a while."""
        if self.last_id is None or self._closed:
            return
        now = time.monotonic()
        out: list[OutboxEvent] = []
        held = False
        # The ids above the high-water mark that were never read and may still commit; an id in
        # between that is neither held nor here was rolled back.
        holes = sorted(i for i in self.reader.missing if i > self.last_id) if self._pending else []
        h = 0
        for event_id in sorted(self._pending):
            while h < len(holes) and holes[h] <= self.last_id:
                h += 1
            if h < len(holes) and holes[h] < event_id:
                if self._gap is None or self._gap.first != holes[h]:
                    self._gap = _Gap(holes[h], now)
                if now - self._gap.since < GAP_MAX_WAIT_S:
                    held = True
                    break
                log.warning(
                    "events %d-%d still uncommitted after %.1f s; later events go first,"
                    " these follow without an id if they commit",
                    holes[h],
                    event_id - 1,
                    GAP_MAX_WAIT_S,
                )
            out.append(self._pending.pop(event_id))
            self.last_id = event_id
        if held:
            # Reads may stop coming (a quiet outbox): the timer releases the gap when it expires.
            self._arm(self._gap.since + GAP_MAX_WAIT_S - now)  # type: ignore[union-attr]
        else:
            self._gap = None
            self._disarm()
        if out and self._subs:  # the wire form is built once, and only for someone
            self._fan_out([Event.of(e) for e in out])

    def _arm(self, delay: float) -> None:
        self._disarm()
        self._timer = asyncio.get_running_loop().call_later(max(delay, 0.0), self._release)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


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
