"""A server-side vector-tile cache that is never stale: LRU by bytes, evicted exactly by the outbox.

Every write path (API, bulk import, raw SQL) records what it changed in the `events` outbox in the
writing transaction: `cell_colour` (layer + code), `feature_changed` (collection + one box per row,
old ∪ new geometry) and `layer_changed` (a re-imported layer). Before a request is answered from
the cache, `ChangeFeed.sync()` reads every event committed since the last read (one indexed query)
and evicts the cached tiles whose buffered envelope meets a changed box — nothing else — so a
write acknowledged before the request began is always in the answer. Each uvicorn worker keeps its
own cache and feed; nothing relies on in-process notifications.

Concurrency, the subtle part:

- Ids are drawn when a row is written, not when it commits: id 10 may become visible after id 11.
  The feed remembers the ids it has not seen below the newest one (`missing`) and asks for them
  again on every read until every transaction that could still commit them has ended. The next
  read lists this database's running transactions (after its snapshot: a writer of a missing id is
  among them or has already committed); once none of those runs any more, every row they wrote is
  visible to the following read, which still asks for the missing ids and only then forgets them.
- A tile not cached is rendered at once (a render that starts after the request arrived is
  current for it). It is stored only if no read after the last one completed before the render
  began evicted it: a change committed after the render's snapshot is applied by such a read, and
  the tile would show the state before it.
- At start, ids older than the oldest transaction running then are settled; the ones between it
  and the newest that are not visible may still commit and are asked for like any gap. Writers
  whose start this role cannot see (other roles' sessions) are waited for before anything is stored.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gridrisk.db.sql_files import sql
from gridrisk.tiles.mvt import (
    ADMIN_LAYERS,
    COLLECTIONS,
    GRID_COLLECTIONS,
    LAYER_COLLECTION,
    TileCollection,
    tile_params,
    tile_range,
)

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("gridrisk.tiles")

Key = tuple[str, int, int, int]  # (collection, z, x, y)
Box = tuple[float, float, float, float]  # lon/lat (minx, miny, maxx, maxy)

# Rows per read (tile_events.sql has the same LIMIT); a fuller read means a flood (a recompute,
# a re-import): the whole cache is dropped instead of evicting tile by tile.
READ_LIMIT = 1000
# More unseen ids than this (a huge rolled-back batch) also drops the cache and starts afresh.
MAX_MISSING = 10_000
# Bookkeeping per cached tile beyond its body (key, entry, index), for the byte budget.
ENTRY_OVERHEAD = 200
# Clocks of one server, but a margin all the same: an id drawn this long before a transaction began
# cannot be one of that transaction's.
START_MARGIN = dt.timedelta(minutes=1)


def content_etag(body: bytes) -> str:
    """A strong ETag from the tile's content: equal bodies, equal tags, in every worker."""
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


@dataclass(frozen=True, slots=True)
class CachedTile:
    """A rendered tile (empty body: no feature, answered 204) and its ETag."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> CachedTile:
        return cls(body, content_etag(body))


@dataclass(slots=True)
class _Eviction:
    check: int  # the read that applied it
    collection: str | None  # None: every collection
    boxes: list[Box] | None  # None: the whole collection


class TileCache:
    """Tiles by (collection, z, x, y), least recently used first out, bounded by bytes.

    Also keeps the evictions applied while renders are in flight, so a render that began before
    an eviction never stores (or hands out) what that eviction removed.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max(0, int(max_bytes))
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evicted = 0  # by changes (not by the byte budget)
        self._lru: OrderedDict[Key, CachedTile] = OrderedDict()
        self._index: dict[tuple[str, int], set[tuple[int, int]]] = {}
        self._log: list[_Eviction] = []
        self._renders: Counter[int] = Counter()  # read number a render began after → renders

    def __len__(self) -> int:
        return len(self._lru)

    def __contains__(self, key: Key) -> bool:
        return key in self._lru

    def get(self, key: Key) -> CachedTile | None:
        tile = self._lru.get(key)
        if tile is None:
            self.misses += 1
            return None
        self._lru.move_to_end(key)
        self.hits += 1
        return tile

    def put(self, key: Key, tile: CachedTile) -> bool:
        """Store TILE (replacing any older one); False when it is too big for the budget."""
        size = len(tile.body) + ENTRY_OVERHEAD
        if size > self.max_bytes // 4:
            return False
        self._drop(key)
        self._lru[key] = tile
        self._index.setdefault((key[0], key[1]), set()).add((key[2], key[3]))
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._lru)))
        return True

    def _drop(self, key: Key) -> bool:
        tile = self._lru.pop(key, None)
        if tile is None:
            return False
        self.bytes -= len(tile.body) + ENTRY_OVERHEAD
        cells = self._index.get((key[0], key[1]))
        if cells is not None:
            cells.discard((key[2], key[3]))
            if not cells:
                del self._index[(key[0], key[1])]
        return True

    # -- evictions ------------------------------------------------------------------------------

    def evict(self, collection: str | None, boxes: list[Box] | None, check: int) -> int:
        """Drop the tiles of COLLECTION (None: all) meeting any of BOXES (None: all); return how many."""
        if self._renders:
            self._log.append(_Eviction(check, collection, boxes))
        doomed: list[Key] = []
        for (coll, z), cells in self._index.items():
            if collection is not None and coll != collection:
                continue
            if boxes is None:
                doomed.extend((coll, z, x, y) for x, y in cells)
                continue
            for box in boxes:
                x0, y0, x1, y1 = tile_range(box, z)
                if (x1 - x0 + 1) * (y1 - y0 + 1) <= len(cells):
                    doomed.extend(
                        (coll, z, x, y)
                        for x in range(x0, x1 + 1)
                        for y in range(y0, y1 + 1)
                        if (x, y) in cells
                    )
                else:
                    doomed.extend((coll, z, x, y) for x, y in cells if x0 <= x <= x1 and y0 <= y <= y1)
        n = sum(self._drop(key) for key in doomed)
        self.evicted += n
        return n

    def touched_since(self, key: Key, check: int) -> bool:
        """Whether an eviction applied after read CHECK concerned the tile KEY."""
        coll, z, x, y = key
        for ev in self._log:
            if ev.check <= check or (ev.collection is not None and ev.collection != coll):
                continue
            if ev.boxes is None:
                return True
            for box in ev.boxes:
                x0, y0, x1, y1 = tile_range(box, z)
                if x0 <= x <= x1 and y0 <= y <= y1:
                    return True
        return False

    def render_started(self, check: int) -> None:
        """A render began after read CHECK: keep the evictions it may need to know about."""
        self._renders[check] += 1

    def render_ended(self, check: int) -> None:
        self._renders[check] -= 1
        if self._renders[check] <= 0:
            del self._renders[check]
        oldest = min(self._renders, default=None)
        if oldest is None:
            self._log.clear()
        else:
            self._log = [ev for ev in self._log if ev.check > oldest]

    def stats(self) -> dict[str, int]:
        return {
            "tiles": len(self._lru),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "evicted": self.evicted,
        }


@dataclass(slots=True)
class _Watch:
    """Unseen ids up to UPTO, forgotten once the transactions that may still commit them have ended.

    `xids`: this database's transactions running at read `listed` (None: the next read lists them);
    `ended`: the first read at which none of them ran any more, so that every later read sees their
    rows.
    """

    upto: int
    xids: frozenset[int] | None = None
    listed: int = 0
    ended: int | None = None

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


def changes_of(rows: Iterable[dict[str, Any]]) -> dict[str, list[Box] | None]:
    """Per tile collection, the lon/lat boxes that changed (None: all of it), from outbox rows."""
    out: dict[str, list[Box] | None] = {}

    def add(collection: str | None, boxes: list[Box] | None) -> None:
        if collection is None or collection not in COLLECTIONS:
            return
        if boxes is None or out.get(collection, []) is None:
            out[collection] = None
        else:
            out.setdefault(collection, []).extend(boxes)  # type: ignore[union-attr]

    for row in rows:
        kind, target = row["kind"], row["target"]
        if kind == "cell_colour":
            collection = LAYER_COLLECTION.get(target)
            if collection in GRID_COLLECTIONS:  # district tiles carry no colour
                box = row["cell_box"]
                add(collection, [tuple(box)] if box else None)  # type: ignore[list-item]
        elif kind == "feature_changed":
            boxes = row["boxes"]
            ok = isinstance(boxes, list) and boxes and all(isinstance(b, list) and len(b) == 4 for b in boxes)
            add(target, [tuple(float(v) for v in b) for b in boxes] if ok else None)  # type: ignore[misc]
        elif kind == "layer_changed":
            add(LAYER_COLLECTION.get(target), None)
            if target in ADMIN_LAYERS:  # every grid cell's district_code may have moved
                for grid in GRID_COLLECTIONS:
                    add(grid, None)
    return out


class ChangeFeed:
    """Applies the outbox to a TileCache; `sync()` returns once every earlier commit is applied."""

    def __init__(self, pool: AsyncConnectionPool, cache: TileCache) -> None:
        self.pool = pool
        self.cache = cache
        self.after: int | None = None  # the newest id applied (None: not started)
        self.missing: set[int] = set()  # unseen ids at or below `after` that may still commit
        self.watches: list[_Watch] = []
        self.start_watch: _Watch | None = None  # ids below `after` unknown at start
        self.ready_at: int | None = None  # tiles rendered after this read may be stored
        self.checks = 0  # reads completed
        self._next: asyncio.Future[int] | None = None
        self._pump: asyncio.Task | None = None

    def may_store(self, check: int) -> bool:
        """Whether a tile rendered after read CHECK may be stored (the start is settled by then)."""
        return self.ready_at is not None and check >= self.ready_at

    async def sync(self) -> int:
        """Apply every event committed before this call; return the number of the read that did.

        Concurrent callers share reads: a caller waits for the next read that starts after it
        arrived (never one already running), so one query serves every request that came meanwhile.
        """
        fut = self._next
        if fut is None:
            fut = self._next = asyncio.get_running_loop().create_future()
            fut.add_done_callback(_retrieve)
            if self._pump is None:
                self._pump = asyncio.get_running_loop().create_task(self._run(), name="gridrisk-tile-feed")
        return await asyncio.shield(fut)

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
        n = await self._read_once()
        while self.after is None:  # dropped everything (a flood): start afresh at once
            n = await self._read_once()
        return n

    async def _read_once(self) -> int:
        """One read of the outbox (or the start), then the evictions it implies."""
        n = self.checks + 1
        async with self.pool.connection() as conn:
            if self.after is None:
                await self._start(conn, n)
                self.checks = n
                return n
            params = {
                "after": self.after,
                "missing": sorted(self.missing),
                "want_xids": self.start_watch is not None or bool(self.watches),
            }
            cur = await conn.execute(sql("tile_events"), params, prepare=True)
            rows = await cur.fetchall()
        running = frozenset(rows[0]["xids"]) if rows[0]["xids"] is not None else None
        events = [r for r in rows if r["id"] is not None]
        if sum(1 for r in events if r["id"] > self.after) >= READ_LIMIT:
            log.info("tile cache: more than %d changes at once; dropping every cached tile", READ_LIMIT)
            self._drop_all(n)
        else:
            self._apply(n, events, running)
        self.checks = n
        return n

    async def _start(self, conn: Any, n: int) -> None:
        """Start after the newest id, knowing which older ids may still commit.

        A transaction's event ids are drawn after it began: ids older than the oldest running
        transaction (with a minute's margin for clocks) are settled; between them and the newest,
        the ids not visible are missing. Writers whose start this role cannot see are waited for.
        """
        cur = await conn.execute(sql("tile_events_sessions"))
        sessions = await cur.fetchone()
        cut = (sessions["oldest"] or sessions["now"]) - START_MARGIN
        cur = await conn.execute(sql("tile_events_start"), {"cut": cut, "span": MAX_MISSING * 20})
        row = await cur.fetchone()
        newest, floor, seen = int(row["newest"]), int(row["floor"]), row["seen"]
        self.cache.evict(None, None, n)
        self.after, self.watches, self.start_watch = newest, [], None
        self.missing = set(range(floor + 1, newest + 1)).difference(seen) if seen is not None else None
        if self.missing is None or len(self.missing) > MAX_MISSING:
            # Too far back to tell the ids apart: wait until every writer running now has ended.
            self.missing, self.start_watch, self.ready_at = set(), _Watch(newest), None
            return
        if self.missing:
            self.watches.append(_Watch(newest))
        hidden = frozenset(sessions["hidden"])
        if hidden:
            # Listed before this read's snapshot: once they have ended, the next read sees their rows.
            self.start_watch, self.ready_at = _Watch(newest, hidden, listed=n - 1), None
        else:
            self.ready_at = n

    def _drop_all(self, n: int) -> None:
        """Forget everything: empty the cache and start afresh (the next read)."""
        self.cache.evict(None, None, n)
        self.after, self.missing, self.watches, self.start_watch, self.ready_at = None, set(), [], None, None

    def _apply(self, n: int, events: list[dict[str, Any]], running: frozenset[int] | None) -> None:
        assert self.after is not None
        gaps = False
        for row in events:
            event_id = row["id"]
            if event_id in self.missing:
                self.missing.discard(event_id)
            elif event_id > self.after:
                if event_id > self.after + 1:
                    self.missing.update(range(self.after + 1, event_id))
                    gaps = True
                self.after = event_id
        for collection, boxes in changes_of(events).items():
            self.cache.evict(collection, boxes, n)
        # A settled watch's ids can no longer commit: stop asking for them (and for any below).
        settled = [w.upto for w in self.watches if w.advance(n, running)]
        if settled:
            bound = max(settled)
            self.watches = [w for w in self.watches if w.upto > bound]
            self.missing = {i for i in self.missing if i > bound}
        if gaps:  # its writers are listed by the next read
            self.watches.append(_Watch(self.after))
        if self.start_watch is not None and self.start_watch.advance(n, running):
            self.start_watch = None
            self.ready_at = n
        if len(self.missing) > MAX_MISSING:
            log.warning("tile cache: %d outbox ids still uncommitted; starting afresh", len(self.missing))
            self._drop_all(n)

    def stats(self) -> dict[str, Any]:
        return {
            "reads": self.checks,
            "after": self.after,
            "missing": len(self.missing),
            "ready": self.ready_at is not None,
        }


def _retrieve(fut: asyncio.Future) -> None:
    """Mark a shared future's exception as seen (its waiters may all have gone)."""
    if not fut.cancelled():
        fut.exception()


@dataclass(slots=True)
class _Flight:
    task: asyncio.Task
    check: int  # reads completed when the render was issued
    number: int  # renders issued before it, this one included


@dataclass
class TileService:
    """The cache, the feed that keeps it current, and the renderer behind them (one per worker)."""

    pool: AsyncConnectionPool
    max_bytes: int
    cache: TileCache = field(init=False)
    feed: ChangeFeed = field(init=False)
    _flights: dict[Key, _Flight] = field(init=False, default_factory=dict)
    _issued: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.cache = TileCache(self.max_bytes)
        self.feed = ChangeFeed(self.pool, self.cache)

    async def tile(self, collection: TileCollection, z: int, x: int, y: int) -> tuple[CachedTile, bool]:
        """The tile, current as of this call, and whether it came from the cache.

        A tile not in the cache on arrival is rendered at once: a render that starts after the
        request arrived is current for it, so it needs no read of the outbox first (the store
        that follows is guarded instead). An answer from the cache, or from a render already in
        flight for the same tile, waits for that read.
        """
        key = (collection.id, z, x, y)
        arrived = self._issued
        if self.cache.max_bytes == 0:
            return CachedTile.of(await self.render(collection, z, x, y)), False
        if key in self.cache or key in self._flights or self.feed.ready_at is None:
            await self.feed.sync()
            cached = self.cache.get(key)
            if cached is not None:
                return cached, True
            # A render in flight is current for this request if it began after the request came,
            # or if nothing evicted the tile since it began (the sync applied every change
            # committed before the request): join it rather than render the same tile again.
            flight = self._flights.get(key)
            if flight is not None and (
                flight.number > arrived or not self.cache.touched_since(key, flight.check)
            ):
                return await asyncio.shield(flight.task), False
        else:
            self.cache.misses += 1
        check = self.feed.checks
        self._issued += 1
        flight = _Flight(
            asyncio.get_running_loop().create_task(self._render_and_store(collection, key, check)),
            check,
            self._issued,
        )
        self._flights[key] = flight
        self.cache.render_started(check)
        flight.task.add_done_callback(lambda _t, key=key, flight=flight: self._landed(key, flight))
        # Shielded: a client that goes away does not cancel a render others may be waiting for.
        return await asyncio.shield(flight.task), False

    def _landed(self, key: Key, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        self.cache.render_ended(flight.check)
        if not flight.task.cancelled():
            flight.task.exception()  # seen: the requests that awaited it have answered it

    async def _render_and_store(self, collection: TileCollection, key: Key, check: int) -> CachedTile:
        """Render; store unless a read after CHECK evicted this tile (it may show an older state)."""
        tile = CachedTile.of(await self.render(collection, key[1], key[2], key[3]))
        # Every change committed after the render's snapshot is applied by a read numbered above
        # CHECK (read CHECK had completed before the render was issued). No await between this
        # test and the store: no eviction can slip in between.
        if self.feed.may_store(check) and not self.cache.touched_since(key, check):
            self.cache.put(key, tile)
        return tile

    async def render(self, collection: TileCollection, z: int, x: int, y: int) -> bytes:
        """One tile straight from PostGIS: one prepared statement, one round trip."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql(collection.sql), tile_params(collection, z, x, y), prepare=True)
            row = await cur.fetchone()
        mvt = row["mvt"] if row else None
        return bytes(mvt) if mvt else b""

    def stats(self) -> dict[str, Any]:
        return {**self.cache.stats(), **self.feed.stats(), "rendering": len(self._flights)}
