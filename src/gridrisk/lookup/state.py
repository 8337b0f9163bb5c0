"""/cells/at from memory: the spatial index, with colours, counts and workers kept current from the outbox.

One `LookupService` per worker process, a consumer of the app's `OutboxReader` (events/outbox.py)
like the tile cache. Read-after-write holds as it does for the database: once a write is
acknowledged, the next lookup shows it, whoever wrote it.

How it stays current. A lookup first awaits `reader.catch_up()` (one outbox query, shared by the
requests waiting): every event committed before the request arrived has then been handed to
`_on_batch`, which marks, with the number of the read that found it, what the event may have changed:
- feature_changed of a table whose items colour the map (map_item_tables(): risk sources, hazard
  points): every cell whose envelope meets one of the event's boxes (old and new geometry). Their
  counts may have changed even when no colour did, and cell_colour is only written for colours;
- cell_colour: that cell (a pin, a recolour);
- layer_changed: the layer is stale (a re-import: geometry, codes, attributes); an admin layer also
  moves every cell's district code and the city outline, so then every layer is;
- a reset batch (the reader's first read, or ids it lost track of): everything.
Marked values are re-read by a sync (`_sync`), one at a time, each reading what was marked when it
began. Concurrency, the subtle part:
- A sync that begins after read N completed reads a snapshot that holds every commit read N saw;
  a mark from a later read stays (its commit may be newer than the snapshot). No await between
  noting N and taking the marks, and none between the snapshot's rows landing and the marks
  clearing, so no batch slips in between.
- A lookup answers from memory when none of its cells is marked: each value is then at least as new
  as every commit before the request. When one is, it waits for a sync that began after its
  catch_up: then every value in memory is. A layer re-imported (or a full load due) is loaded in
  the background while the database answers (cells_at.sql, as before), so no request waits for it.
- Full loads are trusted only from `reader.complete_from` on (before it, a commit could go unseen).
- Workers: a `cell_workers` event (one per statement that changed cell_workers) marks them stale;
  the database answers until they are reloaded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import psycopg

from gridrisk.db.pool import connect_dedicated
from gridrisk.db.sql_files import sql
from gridrisk.events.outbox import Batch, OutboxReader
from gridrisk.lookup import load
from gridrisk.lookup.answer import NO_WORKERS, Composer
from gridrisk.lookup.index import CellIndex
from gridrisk.lookup.live import LiveLayer, any_marked, apply_live, clear_marks, rss_mb
from gridrisk.lookup.tiles import TileAnswers

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("gridrisk.lookup")

# The syncs' own connection gives up on a statement after this long (the database is then unwell).
OWN_TIMEOUT_MS = 10_000
# Batches of more points are located and written in a worker thread, off the event loop.
THREAD_POINTS = 256

Change = tuple  # ("features", table, boxes | None) | ("cell", layer, code) | ("layer", name) | ("workers",)


def _retrieve(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


class LookupService:
    """The index and the live values of one worker process; answers /cells/at."""

    instances = 0  # made in this process

    def __init__(self, pool: AsyncConnectionPool, reader: OutboxReader, tile_m: float = 0.0) -> None:
        self.pool = pool
        self.reader = reader
        self.tile_m = tile_m  # lookup/tiles.py's tile side (0: none)
        self._tiles_for: CellIndex | None = None  # the index whose tiles are to be built next
        self._tiles_task: asyncio.Task | None = None
        self._own: psycopg.AsyncConnection | None = None  # the syncs' connection (_read_live)
        self.index: CellIndex | None = None
        self.layers: list[LiveLayer] = []  # parallel to index.layers
        self.composer: Composer | None = None
        self.cell_of_id: dict[int, tuple[int, int]] = {}  # cells.id → (layer number, position)
        self.items: frozenset[str] = frozenset()
        self.base: int | None = None  # the read after which the last full load began
        self.reset_at = 0  # the reader's last reset: a full load must begin after it
        self.stale: dict[str | None, int] = {}  # re-imported layer (None: all) → the read that said so
        self.workers_stale = 0  # the read that found workers changed; 0: none
        self.loads = 0
        self.syncs = 0
        self.fallbacks = 0
        self.memory_mb: float | None = None  # process RSS growth over the first full load
        self.last_load: dict[str, Any] = {}
        self._interned: dict[bytes, bytes] = {}  # equal live members share one bytes object
        self._log: list[tuple[int, Change]] | None = None  # changes seen while a sync is in flight
        self._flight: tuple[int, asyncio.Future] | None = None  # (its read, its future)
        self._next: asyncio.Future | None = None  # the next sync's (not begun yet)
        self._synced = -1  # the highest read after which a completed sync began
        self._task: asyncio.Task | None = None
        self._closed = False
        reader.subscribe(self._on_batch, self._on_close)
        LookupService.instances += 1

    # -- answering ------------------------------------------------------------------------------

    async def one(self, lon: float, lat: float) -> tuple[bytes, bool]:
        """The answer for one point, current as of this call, and whether any cell or the city holds it."""
        read = await self.reader.catch_up()
        for attempt in (0, 1):
            if not self.usable():
                self._request()
                break
            composer, layers = self.composer, self.layers
            assert composer is not None
            row, inside = composer.index.locate_one(lon, lat)
            if attempt == 0 and any(p >= 0 and p in layers[i].marks for i, p in enumerate(row)):
                await self._wait_synced(read)
                continue
            body = composer.one(lon, lat, row, inside)
            if body is None:
                break
            return body, inside or any(p >= 0 for p in row)
        self.fallbacks += 1
        (answer,) = await self._ask_database([lon], [lat])
        return answer["body"].encode(), bool(answer["inside_city"] or answer["found"])

    async def many(self, lons: list[float], lats: list[float]) -> bytes:
        """The answers for many points, in order and joined by commas, current as of this call."""
        read = await self.reader.catch_up()
        xs, ys = np.asarray(lons, float), np.asarray(lats, float)
        big = len(lons) > THREAD_POINTS
        for attempt in (0, 1):
            if not self.usable():
                self._request()
                break
            composer, layers = self.composer, self.layers
            assert composer is not None
            if big:
                hits, inside = await asyncio.to_thread(composer.index.locate, xs, ys)
            else:
                hits, inside = composer.index.locate(xs, ys)
            if attempt == 0 and any_marked(layers, hits):
                await self._wait_synced(read)
                continue
            if big:
                joined = await asyncio.to_thread(composer.many, lons, lats, hits, inside)
            else:
                joined = composer.many(lons, lats, hits, inside)
            if joined is None:
                break
            return joined
        self.fallbacks += 1
        return b",".join(row["body"].encode() for row in await self._ask_database(lons, lats))

    def city_holds(self, lon: float, lat: float) -> bool | None:
        """Whether the city outline holds the point, from memory (call after catch_up); None: not known."""
        composer = self.composer
        if composer is None or not self.usable():
            self._request()
            return None
        return composer.index.city_holds(lon, lat)

    def usable(self) -> bool:
        """Whether memory may answer: loaded after every reset, from a complete reader, nothing stale."""
        ready = self.reader.complete_from
        return (
            self.composer is not None
            and ready is not None
            and self.base is not None
            and self.base >= max(ready, self.reset_at)
            and not self.stale
            and not self.workers_stale
        )

    async def _ask_database(self, lons: list[float], lats: list[float]) -> list[dict]:
        """The lookup as PostGIS answers it (cells_at.sql): while the index is loading."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql("cells_at"), {"lons": lons, "lats": lats}, prepare=True)
            return await cur.fetchall()

    # -- the outbox -----------------------------------------------------------------------------

    def _on_batch(self, batch: Batch) -> None:
        """Mark what the batch's events may have changed (everything on a reset); start a sync."""
        if batch.reset:
            self.reset_at = batch.read
            self._request()
            return
        changes: list[Change] = []
        for event in batch.events:
            if event.kind == "feature_changed":
                changes.append(("features", event.target, event.boxes))
            elif event.kind == "cell_colour":
                try:
                    code = orjson.loads(event.data).get("code")
                except (orjson.JSONDecodeError, AttributeError):
                    code = None
                changes.append(("cell", event.layer, code) if code else ("layer", event.layer))
            elif event.kind == "layer_changed":
                changes.append(("layer", event.target))
            elif event.kind == "cell_workers":
                changes.append(("workers",))
        try:
            marked = False
            for change in changes:
                marked |= self._mark(batch.read, change)
                if self._log is not None:
                    self._log.append((batch.read, change))
        except Exception:  # a change not marked would be missed: reload everything instead
            log.exception("lookup index: could not apply read %d; reloading everything", batch.read)
            self.stale[None] = batch.read
            marked = True
        if marked or (self._full_due() and self.reader.complete_from is not None):
            self._request()

    def _mark(self, read: int, change: Change) -> bool:
        """Mark what CHANGE may have changed, at READ; whether anything was."""
        kind = change[0]
        if kind == "workers":
            self.workers_stale = read
            return True
        index = self.index
        if kind == "layer":
            number = index.by_name.get(change[1]) if index is not None else None
            if number is None or index.layers[number].kind != "grid":  # type: ignore[union-attr]
                self.stale[None] = read  # an admin layer (or one not known yet): everything
            else:
                self.stale[change[1]] = read
            return True
        if index is None:
            return False  # the first load reads everything
        if kind == "cell":
            number = index.by_name.get(change[1])
            pos = index.layers[number].pos_of_code.get(change[2]) if number is not None else None
            if pos is None:
                return False  # a cell the index does not know: its layer's layer_changed follows
            self.layers[number].marks[pos] = read  # type: ignore[index]
            return True
        if change[1] not in self.items:
            return False
        boxes = change[2]
        if boxes is not None and not all(math.isfinite(v) for box in boxes for v in box):
            boxes = None  # a box that cannot be matched: every cell
        hit = False
        for live, positions in zip(
            self.layers,
            [np.arange(len(layer)) for layer in index.layers] if boxes is None else index.meeting(boxes),
            strict=True,
        ):
            if len(positions):
                live.marks.update(dict.fromkeys(positions.tolist(), read))
                hit = True
        return hit

    def _full_due(self) -> bool:
        ready = self.reader.complete_from
        return self.base is None or self.base < max(self.reset_at, ready or 0)

    def _on_close(self) -> None:
        self._closed = True
        for task in (self._task, self._tiles_task):
            if task is not None and not task.done():
                task.cancel()

    # -- tiles ----------------------------------------------------------------------------------

    def _want_tiles(self, index: CellIndex) -> None:
        """Build INDEX's tile answers in a thread, one build at a time; lookups use the tree meanwhile."""
        if not self.tile_m or index.tiles is not None or self._closed:
            return
        self._tiles_for = index
        if self._tiles_task is None:
            loop = asyncio.get_running_loop()
            self._tiles_task = loop.create_task(self._build_tiles(), name="gridrisk-tiles")

    async def _build_tiles(self) -> None:
        try:
            while self._tiles_for is not None and not self._closed:
                index, self._tiles_for = self._tiles_for, None
                if index is not self.index:
                    continue  # replaced while waiting: its successor is (or will be) asked for
                started = time.perf_counter()
                try:
                    tiles = await asyncio.to_thread(TileAnswers, index, self.tile_m)
                except Exception:  # the tree still answers every lookup: say so, carry on
                    log.exception("lookup tiles: could not build them; the spatial index answers")
                    continue
                index.tiles = tiles  # set once, on the event loop: every later lookup may use it
                log.info(
                    "lookup tiles: %s built in %.2f s",
                    ", ".join(f"{k} {v}" for k, v in tiles.stats().items()),
                    time.perf_counter() - started,
                )
        finally:
            self._tiles_task = None

    # -- syncs ----------------------------------------------------------------------------------

    def _request(self) -> asyncio.Future:
        """The future of the next sync (begun after this call), starting the pump if idle."""
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
            self._next.add_done_callback(_retrieve)
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="gridrisk-lookup-sync")
        return self._next

    async def _wait_synced(self, read: int) -> None:
        """Return once a sync that began after READ has completed."""
        while self._synced < read:
            flight = self._flight
            fut = flight[1] if flight is not None and flight[0] >= read else self._request()
            await asyncio.shield(fut)

    async def _run(self) -> None:
        try:
            while self._next is not None and not self._closed:
                fut, self._next = self._next, None
                n = self.reader.reads
                self._flight, self._log = (n, fut), []
                try:
                    await self._sync(n)
                except asyncio.CancelledError:
                    fut.cancel()
                    raise
                except Exception as exc:  # the requests waiting answer it (503 for a lost database)
                    log.warning("lookup index: sync failed (%s)", str(exc).strip().splitlines()[:1])
                    fut.set_exception(exc)
                else:
                    self._synced = max(self._synced, n)
                    self.syncs += 1
                    fut.set_result(n)
                finally:
                    self._flight, self._log = None, None
        finally:
            self._task = None

    async def _sync(self, n: int) -> None:
        """Re-read what is marked (all of it on a full load); read N had completed when it began."""
        # No await before the marks are taken: every mark now is from read N or before.
        full = self._full_due()
        if full and self.reader.complete_from is None:
            return  # nothing loaded now could be trusted; the database answers meanwhile
        stale, workers = dict(self.stale), self.workers_stale
        dirty = [(live, list(live.marks)) for live in self.layers if live.marks]
        if full or stale or workers:
            await self._load(n, full, stale, dirty)
            return
        if not dirty:
            return
        ids = [int(live.cells.ids[p]) for live, positions in dirty for p in positions]
        rows = await self._read_live(ids)
        # No await from here on: the rows and the marks they clear land together.
        apply_live(self.layers, self.cell_of_id, rows, ids, self._interned)
        clear_marks(n, dirty)

    async def _read_live(self, ids: list[int]) -> list[tuple[int, bytes]]:
        """The live values of cells IDS, on the service's own connection: a lookup that waits for
        this must not wait for the pool too (heavy reads may hold all of it). The pool's while the
        own one cannot be had; a failed one is dropped and made again on the next sync."""
        conn = self._own
        if conn is None or conn.closed:
            try:
                conn = self._own = await connect_dedicated(
                    self.pool.conninfo, "gridrisk-lookup", statement_timeout_ms=OWN_TIMEOUT_MS
                )
            except (psycopg.Error, OSError):
                self._own = None
                async with self.pool.connection() as pooled:
                    return await load.read_live(pooled, ids=ids)
        try:
            return await load.read_live(conn, ids=ids)
        except psycopg.Error:
            self._own = None
            await conn.close()
            raise

    async def aclose(self) -> None:
        """Close the service's own connection (the lifespan's end)."""
        conn, self._own = self._own, None
        if conn is not None:
            await conn.close()

    async def _load(self, n: int, full: bool, stale: dict, dirty: list[tuple[LiveLayer, list[int]]]) -> None:
        """Reload layers (re-imported, new, or of another version on a full load), live values, workers."""
        started, rss = time.perf_counter(), rss_mb()
        current = {live.cells.name: live for live in self.layers}
        known = {name: (live.cells.kind, live.cells.version) for name, live in current.items()}
        async with self.pool.connection() as conn, conn.transaction():
            await load.begin_snapshot(conn)
            rows = await load.read_layers(conn)
            items = await load.read_items(conn) if full or not self.items else self.items
            rebuild = {
                r.name
                for r in rows
                if None in stale
                or r.name in stale
                or r.name not in known
                or (full and known[r.name] != (r.kind, r.version))
            }
            if self.index is None or any(r.kind != "grid" for r in rows if r.name in rebuild):
                rebuild = {r.name for r in rows}  # admin units and the outline moved: everything
            built = {r.name: await load.read_layer(conn, r) for r in rows if r.name in rebuild}
            city = await load.read_city(conn) if len(built) == len(rows) else None
            names = [r.name for r in rows]
            fresh = set(names) if full else set(built)
            live_rows = await load.read_live(conn, layers=sorted(fresh)) if fresh else []
            others = [
                int(live.cells.ids[p])
                for live, positions in dirty
                if live.cells.name not in fresh
                for p in positions
            ]
            live_rows += await load.read_live(conn, ids=others) if others else []
            workers = await load.read_workers(conn)
        index = self.index
        if index is None or built or [layer.name for layer in index.layers] != names:
            if index is None:
                index = await asyncio.to_thread(CellIndex, [built[name] for name in names], city)
            else:
                index = await asyncio.to_thread(index.with_layers, built, names, city)
        # No await from here on: the new index, its values and the marks they clear land together.
        layers = [
            current[layer.name] if layer.name in current and layer.name not in built else LiveLayer(layer)
            for layer in index.layers
        ]
        for live in layers:
            if live.cells.name in fresh:
                live.live = [None] * len(live.cells)  # every value of the layer is in live_rows
                live.marks = {p: r for p, r in live.marks.items() if r > n}
            live.workers = [workers.get((live.cells.name, code), NO_WORKERS) for code in live.cells.codes]
        if index is not self.index:
            self.cell_of_id = {
                int(cell_id): (i, pos)
                for i, live in enumerate(layers)
                for pos, cell_id in enumerate(live.cells.ids.tolist())
            }
        self.index, self.layers, self.items = index, layers, items
        apply_live(self.layers, self.cell_of_id, live_rows, others, self._interned)
        kept = {id(live) for live in layers}
        clear_marks(n, [(live, positions) for live, positions in dirty if id(live) in kept])
        # Changes read while this load was in flight, marked again on the cells as they are now.
        for read, change in self._log or []:
            self._mark(read, change)
        self.stale = {key: read for key, read in self.stale.items() if read > n}
        if self.workers_stale <= n:
            self.workers_stale = 0
        if full:
            self.base = n
        self.composer = Composer(index, [live.live for live in layers], [live.workers for live in layers])
        self._want_tiles(index)
        if LookupService.instances == 1:
            # The index is most of the process's long-lived objects (tens of thousands of geometries,
            # all tracked by the cyclic GC). Frozen, no full collection walks them again: without
            # this, one every few seconds under load paused the worker for 60-80 ms (most of
            # cells/at's p99). They never form cycles (a reload's predecessors are freed by reference
            # counting), but frozen cycles are never collected: so only in a process with one app,
            # as a served worker is (a test process makes many).
            gc.freeze()
        self.loads += 1
        seconds, grown = time.perf_counter() - started, rss_mb() - rss
        if self.memory_mb is None and len(built) == len(names):
            self.memory_mb = round(grown, 1)
        self.last_load = {"layers": sorted(built), "full": full, "seconds": round(seconds, 3)}
        log.info(
            "lookup index: %s loaded in %.2f s (%d cells, %d pieces); process RSS %.0f MB (%+.0f MB)",
            ", ".join(sorted(built)) or "live values and workers",
            seconds,
            sum(len(layer) for layer in index.layers),
            index.pieces,
            rss_mb(),
            grown,
        )

    def readiness(self) -> dict[str, Any]:
        """Cheap enough for /health: whether memory answers, and the tiles' figures once built."""
        index = self.index
        return {
            "memory": self.usable(),
            "tiles": index.tiles.stats() if index is not None and index.tiles is not None else None,
        }

    def stats(self) -> dict[str, Any]:
        """A snapshot for logs, benchmarks and health checks."""
        index = self.index.stats() if self.index is not None else {}
        return {
            **index,
            "usable": self.usable(),
            "loads": self.loads,
            "syncs": self.syncs,
            "fallbacks": self.fallbacks,
            "marked": sum(len(live.marks) for live in self.layers),
            "memory_mb": self.memory_mb,
            "tiles": self.readiness()["tiles"],
            "rss_mb": round(rss_mb(), 1),
            "last_load": self.last_load,
        }
