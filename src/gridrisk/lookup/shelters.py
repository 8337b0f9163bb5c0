"""GET /shelters/nearest from memory: every shelter kept current from the outbox (lookup/shelter_sites.py).

One `NearestShelters` per worker process, a consumer of the app's `OutboxReader` (events/outbox.py)
like the lookup service, answering what db/sql/shelter_nearest.sql answers, byte for byte and as
current. The database stays the answer while memory cannot give it (not loaded yet, a load that
failed, the city outline being re-read by the lookup service).

How it stays exact:
- Free places move with every check-in and every reservation, and both write a feature_changed
  of `shelters` in the transaction that makes the change (a check-in updates the shelter's row;
  a reservation's statement trigger, shelter_reservations_changed, names its shelters). A batch
  holding one marks the shelters it names with the number of its read (an event without ids, or
  a reset, asks for everything).
- A request first awaits `reader.catch_up()`: every commit acknowledged before it has then been
  seen. Memory answers once a load that began after the last read that marked a change has
  landed (the load's snapshot then holds every commit that read saw); else such a load is
  awaited, one at a time, shared by the requests waiting.
- A load reads the marked shelters alone (a burst of check-ins costs one small read) and takes
  them in place; everything is read again when a shelter was added, removed or moved. No await
  between noting the read a load begins after and taking the marks, nor between its rows landing
  and the marks clearing, so no batch slips in between; a mark from a later read stays.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from psycopg.rows import tuple_row

from gridrisk.db.sql_files import sql
from gridrisk.events.outbox import Batch, OutboxReader
from gridrisk.geometry.geodesic import Vector, box_cap, cap_bound, unit_vector
from gridrisk.lookup.shelter_sites import Found, ShelterSites

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from gridrisk.lookup.state import LookupService

log = logging.getLogger("gridrisk.lookup")


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # logged by the load itself; a request that awaits it sees it too


def _event_ids(data: str) -> list[int] | None:
    """The ids a feature_changed payload names; None when it names none (past 500 rows) or is unreadable."""
    try:
        ids = orjson.loads(data).get("ids")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return ids if isinstance(ids, list) and all(isinstance(i, int) for i in ids) else None


class NearestShelters:
    """The shelters of one worker process in memory; answers /shelters/nearest (None: ask the database)."""

    def __init__(self, pool: AsyncConnectionPool, reader: OutboxReader, lookup: LookupService) -> None:
        self.pool = pool
        self.reader = reader
        self.lookup = lookup  # answers whether the city holds the point
        self.sites: ShelterSites | None = None
        self.loaded_after = -1  # the read after which the last load's snapshot began
        self.changed_at = 0  # the last read that found a change to shelters (or a reset)
        # Shelter id → the last read that found it changed, and a cap holding its old and new site.
        self.marked: dict[int, tuple[int, Vector, float]] = {}
        self.everything_at = 0  # the last read that asked for every shelter to be read again
        self._flight: tuple[int, asyncio.Task] | None = None
        self._closed = False
        self.loads = 0
        self.answered = 0
        self.untouched = 0  # answered while changes were still loading, none of them near
        self.fallbacks = 0
        self.fallen: dict[str, int] = {}  # why the database answered, and how often
        self.last_load_ms: float | None = None
        reader.subscribe(self._on_batch, self._on_close)

    def _on_batch(self, batch: Batch) -> None:
        if batch.reset:
            self.changed_at = self.everything_at = batch.read
            return
        changed = False
        for event in batch.events:
            if event.kind == "feature_changed" and event.target == "shelters":
                changed = True
                self.changed_at = batch.read
                ids, boxes = _event_ids(event.data), event.boxes
                if ids is None or boxes is None or len(boxes) != len(ids):
                    self.everything_at = batch.read
                    continue
                for sid, box in zip(ids, boxes, strict=True):
                    self.marked[sid] = (batch.read, *box_cap(*box))
        if changed and self.sites is not None and not self._closed:
            self._start_load()  # now, not when the next request finds it due

    def _on_close(self) -> None:
        self._closed = True
        if self._flight is not None:
            self._flight[1].cancel()

    def current(self) -> bool:
        """Whether the loaded sites hold every change the reader has seen."""
        ready = self.reader.complete_from
        return (
            self.sites is not None and ready is not None and self.loaded_after >= max(ready, self.changed_at)
        )

    async def answer(
        self, lon: float, lat: float, limit: int, statuses: tuple[str, ...], klass: str | None, min_free: int
    ) -> bytes | None:
        """The answer, current as of this call; None when memory cannot give it (the database will)."""
        await self.reader.catch_up()
        ready = self.reader.complete_from
        # Every change this request must see was found by a read up to now: a load begun after
        # the last of them holds it. (Changes found later committed after the request arrived.)
        need = max(ready, self.changed_at) if ready is not None else None
        if need is None:
            return self._fallback("reader incomplete")
        if self.loaded_after < need:
            found = self._untouched(lon, lat, limit, statuses, klass, min_free)
            if found is not None:
                return self._body(lon, lat, found)
            if not await self._refresh(need):
                return self._fallback("load failed")
        assert self.sites is not None
        return self._body(lon, lat, self.sites.nearest(lon, lat, limit, statuses, klass, min_free))

    def _untouched(self, lon: float, lat: float, limit: int, *filters: Any) -> Found | None:
        """The answer from the sites as loaded, when no change not yet loaded can touch it: LIMIT
        shelters found, and every marked shelter's cap (its old and new site) farther than the last
        of them, so it is in the answer neither before its change nor after. Else None."""
        sites = self.sites
        if sites is None or self.everything_at > self.loaded_after:
            return None
        found = sites.nearest(lon, lat, limit, *filters)
        if len(found) < limit:
            return None  # every shelter that passes is listed: any change may add or remove one
        p, kth = unit_vector(lon, lat), found[-1][0]
        if all(cap_bound(p, centre, reach) > kth for _, centre, reach in self.marked.values()):
            self.untouched += 1
            return found
        return None

    def _body(self, lon: float, lat: float, found: Found) -> bytes | None:
        inside = self.lookup.city_holds(lon, lat)
        if inside is None or self.sites is None:
            return self._fallback("city outline not in memory")
        self.answered += 1
        return self.sites.body(lon, lat, inside, found)

    def _fallback(self, why: str) -> None:
        self.fallbacks += 1
        self.fallen[why] = self.fallen.get(why, 0) + 1

    async def _refresh(self, need: int) -> bool:
        """Await a load begun after read NEED (one at a time, shared); False if it failed."""
        while self.loaded_after < need:
            if self._closed:
                return False
            flight = self._flight or self._start_load()
            try:
                await asyncio.shield(flight[1])
            except Exception:
                if flight[0] >= need:
                    return False  # the load this request needed failed: the database answers
            # A load begun before NEED ended: the next one begins after it.
        return True

    def _start_load(self) -> tuple[int, asyncio.Task]:
        """The load in flight, or one begun now (after the last read: it holds that read's commits)."""
        if self._flight is None:
            n = self.reader.reads
            task = asyncio.get_running_loop().create_task(self._load(n), name="gridrisk-shelter-load")
            task.add_done_callback(_retrieve)
            self._flight = (n, task)
        return self._flight

    async def _load(self, n: int) -> None:
        """Read what changed up to read N (everything when asked, or the first time) and take it."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            every = self.sites is None or self.everything_at > self.loaded_after
            ids = None if every else sorted(i for i, (read, *_) in self.marked.items() if read <= n)
            if ids != []:
                rows = await self._read(ids)
                # No await from here until the marks clear: no batch slips in between.
                if ids is None or self.sites is None or not self.sites.update(ids, rows):
                    if ids is not None:  # a shelter added, removed or moved: read them all
                        rows = await self._read(None)
                    self.sites = ShelterSites(rows, self.sites)
                self.loads += 1
            for i in [i for i, (read, *_) in self.marked.items() if read <= n]:
                del self.marked[i]
            self.loaded_after = max(self.loaded_after, n)
            self.last_load_ms = round((loop.time() - started) * 1000, 1)
        except Exception:
            log.exception("loading the shelters for nearest answers failed; the database answers meanwhile")
            raise
        finally:
            self._flight = None

    async def _read(self, ids: list[int] | None) -> list[tuple]:
        async with self.pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            return await (await cur.execute(sql("shelter_sites"), {"ids": ids})).fetchall()

    async def aclose(self) -> None:
        """Stop a load in flight."""
        self._closed = True
        flight = self._flight
        if flight is not None:
            flight[1].cancel()
            await asyncio.gather(flight[1], return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        """For /health and benchmarks: whether memory answers, and how often it did."""
        return {
            "memory": self.current(),
            "shelters": len(self.sites) if self.sites is not None else None,
            "loads": self.loads,
            "last_load_ms": self.last_load_ms,
            "answered": self.answered,
            "from_cells": self.sites.cell_answers if self.sites is not None else 0,
            "cells": self.sites.cells_kept if self.sites is not None else 0,
            "untouched_by_pending_changes": self.untouched,
            "fallbacks": self.fallbacks,
            "fallen_back_because": self.fallen,
        }
