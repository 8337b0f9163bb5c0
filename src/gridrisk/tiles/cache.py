"""A server-side vector-tile cache that is never stale: LRU by bytes, evicted exactly by the outbox.

Every write path (API, bulk import, raw SQL) records what it changed in the `events` outbox in the
writing transaction: `cell_colour` (layer + code), `feature_changed` (collection + one box per row,
old ∪ new geometry) and `layer_changed` (a re-imported layer). The tile service consumes the app's
`OutboxReader` (events/outbox.py): every batch it reads evicts the cached tiles whose buffered
envelope meets a changed box, nothing else. Before a request is answered from the cache,
`reader.catch_up()` delivers every event committed since the last read (one indexed query, shared
by the requests waiting), so a write acknowledged before the request began is always in the answer.
Each uvicorn worker keeps its own cache and reader; nothing relies on in-process notifications.

Concurrency, the subtle part (ids that commit late are the reader's business: it delivers them
when they commit, and says from which read on it can miss none, `complete_from`):

- A tile not cached is rendered at once (a render that starts after the request arrived is
  current for it). It is stored only if no read after the last one completed before the render
  began evicted it: a change committed after the render's snapshot is applied by such a read, and
  the tile would show the state before it. Nor is it stored if it began before `complete_from`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg_pool

from gridrisk.db.sql_files import sql
from gridrisk.events.outbox import PAGE, Batch, Box, OutboxEvent, OutboxReader
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

    from gridrisk.db.replicas import ReplicaSet

log = logging.getLogger("gridrisk.tiles")

Key = tuple[str, int, int, int]  # (collection, z, x, y)

# A batch this big (a full page of the reader: a recompute, a re-import) drops the whole cache
# instead of evicting tile by tile.
FLOOD = PAGE
# Bookkeeping per cached tile beyond its body (key, entry, index), for the byte budget.
ENTRY_OVERHEAD = 200


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


def changes_of(events: Iterable[OutboxEvent]) -> dict[str, list[Box] | None]:
    """Per tile collection, the lon/lat boxes that changed (None: all of it), from outbox events."""
    out: dict[str, list[Box] | None] = {}

    def add(collection: str | None, boxes: tuple[Box, ...] | None) -> None:
        if collection is None or collection not in COLLECTIONS:
            return
        if boxes is None or out.get(collection, []) is None:
            out[collection] = None
        else:
            out.setdefault(collection, []).extend(boxes)  # type: ignore[union-attr]

    for event in events:
        kind, target = event.kind, event.target
        if kind == "cell_colour":
            collection = LAYER_COLLECTION.get(target)  # type: ignore[arg-type]
            if collection in GRID_COLLECTIONS:  # district tiles carry no colour
                add(collection, event.boxes)  # no box (the cell is gone): the whole layer
        elif kind == "feature_changed":
            add(target, event.boxes)
        elif kind == "layer_changed":
            add(LAYER_COLLECTION.get(target), None)  # type: ignore[arg-type]
            if target in ADMIN_LAYERS:  # every grid cell's district_code may have moved
                for grid in GRID_COLLECTIONS:
                    add(grid, None)
    return out


@dataclass(slots=True)
class _Flight:
    task: asyncio.Task
    check: int  # reads completed when the render was issued
    number: int  # renders issued before it, this one included


@dataclass
class TileService:
    """The cache, kept current by the outbox reader, and the renderer behind it (one per worker)."""

    pool: AsyncConnectionPool
    reader: OutboxReader
    max_bytes: int
    # Streaming replicas to render on (db/replicas.py); None: the primary renders every tile.
    replicas: ReplicaSet | None = None
    cache: TileCache = field(init=False)
    _flights: dict[Key, _Flight] = field(init=False, default_factory=dict)
    _issued: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.cache = TileCache(self.max_bytes)
        self.reader.subscribe(self._on_batch)

    def _on_batch(self, batch: Batch) -> None:
        """Evict the tiles over what the reader found (all of them on a reset or a flood)."""
        if batch.reset or len(batch.events) >= FLOOD:
            if not batch.reset:
                log.info("tile cache: %d changes at once; dropping every cached tile", len(batch.events))
            self.cache.evict(None, None, batch.read)
            return
        for collection, boxes in changes_of(batch.events).items():
            self.cache.evict(collection, boxes, batch.read)

    def may_store(self, check: int) -> bool:
        """Whether a tile rendered after read CHECK may be stored (no commit can be missed since)."""
        ready = self.reader.complete_from
        return ready is not None and check >= ready

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
        if key in self.cache or key in self._flights or self.reader.complete_from is None:
            await self.reader.catch_up()
            cached = self.cache.get(key)
            if cached is not None:
                return cached, True
            # A render in flight is current for this request if it began after the request came,
            # or if nothing evicted the tile since it began (the read applied every change
            # committed before the request): join it rather than render the same tile again.
            flight = self._flights.get(key)
            if flight is not None and (
                flight.number > arrived or not self.cache.touched_since(key, flight.check)
            ):
                return await asyncio.shield(flight.task), False
        else:
            self.cache.misses += 1
        check = self.reader.reads
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
        if self.may_store(check) and not self.cache.touched_since(key, check):
            self.cache.put(key, tile)
        return tile

    async def render(self, collection: TileCollection, z: int, x: int, y: int) -> bytes:
        """One tile straight from PostGIS, on a replica when there are some.

        A replica renders only once it has replayed what the primary had written when the render
        began: then the tile is at least as new as every change the cache applied before it (and
        every write acknowledged before the request), and later changes evict it as they would a
        tile rendered on the primary. Otherwise, or if the replica fails, the primary renders.
        """
        replicas = self.replicas
        if replicas is not None:
            try:
                pool, _ = await replicas.pool_for(await replicas.fresh_lsn())
            except (psycopg.Error, psycopg_pool.PoolTimeout, OSError):
                pool = self.pool
            if pool is not self.pool:
                try:
                    return await self._render_on(pool, collection, z, x, y)
                except (psycopg.OperationalError, psycopg_pool.PoolTimeout) as exc:
                    replicas.mark_down(pool, f"a tile render failed ({type(exc).__name__})")
        return await self._render_on(self.pool, collection, z, x, y)

    async def _render_on(
        self, pool: AsyncConnectionPool, collection: TileCollection, z: int, x: int, y: int
    ) -> bytes:
        """One prepared statement, one round trip."""
        async with pool.connection() as conn:
            cur = await conn.execute(sql(collection.sql), tile_params(collection, z, x, y), prepare=True)
            row = await cur.fetchone()
        mvt = row["mvt"] if row else None
        return bytes(mvt) if mvt else b""

    def stats(self) -> dict[str, Any]:
        return {**self.cache.stats(), **self.reader.stats(), "rendering": len(self._flights)}
