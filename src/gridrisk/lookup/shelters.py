"""GET /shelters/nearest from memory: every shelter's site, filters and feature, kept current from the outbox.

One `NearestShelters` per worker process, a consumer of the app's `OutboxReader` (events/outbox.py)
like the lookup service, answering what db/sql/shelter_nearest.sql answers, byte for byte and as
current. The database stays the answer while memory may not give it (not loaded yet, a load that
failed, the city outline being re-read by the lookup service).

How it stays exact:
- Free places move with every check-in and every reservation, and both write a feature_changed
  of `shelters` in the transaction that makes the change (a check-in updates the shelter's row;
  a reservation's statement trigger, shelter_reservations_changed, names its shelters). A batch
  holding one, or a reset, marks the shelters changed with the number of its read.
- A request first awaits `reader.catch_up()`: every commit acknowledged before it has then been
  seen. The sites answer when their load began after the last read that marked a change (the
  load's snapshot then holds every commit that read saw), else a new load is awaited, one at a
  time, shared by the requests waiting (a burst of check-ins costs one reload per burst).
- Distances are PostGIS's own (geometry/geodesic.py), ranked as the query ranks them: by the
  distance, then the id. Exact distances are computed only for the sites whose lower bound is
  below the k-th best distance found; every other site is provably farther.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from psycopg.rows import tuple_row

from gridrisk.db.sql_files import sql
from gridrisk.events.outbox import Batch, OutboxReader
from gridrisk.geometry.geodesic import R_LOWER, SiteSet, Vector, unit_vector, unit_vectors

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from gridrisk.lookup.state import LookupService

log = logging.getLogger("gridrisk.lookup")

_HOLE = b'"distance_m" : null'  # where each feature's distance goes (shelter_sites.sql)
_TENTH = Decimal("0.1")
_MASKS = 64  # filter masks kept per load (the default one is nearly always asked)
# Candidate lists by grid cell (ShelterSites._cell): the cell's side, how many sites a list holds,
# and how many lists a load keeps (each about 1 KB).
CELL_M = 1000.0
CELL_SITES = 32
CELLS = 20_000


def pg_float(x: float) -> bytes:
    """A float8 as PostgreSQL writes it in JSON (shortest round trip, no trailing `.0`)."""
    text = repr(x)
    return (text[:-2] if text.endswith(".0") else text).encode()


def pg_metres(d: float) -> bytes:
    """round(d::numeric, 1) as PostgreSQL writes it: float8 → numeric keeps 15 digits, then half up."""
    # Away from a tie (hundredths near 5), every rounding agrees: Python's of the binary value, and
    # PostgreSQL's of its 15-digit decimal. Only near one does the decimal have to be written out.
    if 0.0 <= d < 1e9 and abs((d * 10.0) % 1.0 - 0.5) > 1e-6:
        return b"%.1f" % d
    text = f"{d:.15g}"
    if "e" in text or d < 0:  # tiny (or impossible) values: the general way
        return str(Decimal(text).quantize(_TENTH, ROUND_HALF_UP)).encode()
    whole, _, frac = text.partition(".")
    tenths = int(whole) * 10 + int(frac[:1] or 0) + (frac[1:2] >= "5")
    return b"%d.%d" % divmod(tenths, 10)


class ShelterSites:
    """One load of every shelter: the sites for distances, the filters' columns, the features' text."""

    def __init__(self, rows: Sequence[tuple], previous: ShelterSites | None = None) -> None:
        self.ids = np.array([r[0] for r in rows], np.int64)
        self.id_list: list[int] = self.ids.tolist()
        self.status = np.array([r[1] for r in rows], object)
        self.klass = np.array([r[2] for r in rows], object)
        self.spare = np.array([r[3] for r in rows], np.int64)
        wkbs = [bytes(r[4]) for r in rows]
        # A reload after a check-in keeps every site's geometry: reuse what was built from it.
        self.sites = SiteSet.reusing(shapely.from_wkb(wkbs), wkbs, previous.sites if previous else None)
        self.head: list[bytes] = []
        self.tail: list[bytes] = []
        for r in rows:
            text = r[5].encode()
            at = text.index(_HOLE)
            self.head.append(text[: at + len(_HOLE) - 4])
            self.tail.append(text[at + len(_HOLE) :])
        self._masks: dict[tuple, tuple[np.ndarray, int]] = {}
        # The cells' grid: square-ish at the sites' mean latitude (any size would be exact).
        mean_z = float(np.clip(self.sites.centre[:, 2].mean(), -1.0, 1.0)) if rows else 0.0
        mean_lat = math.degrees(math.asin(mean_z))
        self._dy = CELL_M / 111_320.0
        self._dx = self._dy / max(math.cos(math.radians(mean_lat)), 0.1)
        self._cells: dict[tuple, tuple[list[float], list[int], bool]] = {}
        self.cell_answers = 0  # answered from a cell's list (the rest: from every site's bound)

    def __len__(self) -> int:
        return len(self.id_list)

    def _mask(self, key: tuple) -> tuple[np.ndarray, int]:
        """The shelters the filters (statuses, class, min_free) leave out (infinity, else 0: added to
        their bounds), and how many pass."""
        found = self._masks.get(key)
        if found is None:
            statuses, klass, min_free = key
            ok = np.isin(self.status, statuses) & (self.spare >= min_free)
            if klass is not None:
                ok &= self.klass == klass
            found = (np.where(ok, 0.0, np.inf), int(ok.sum()))
            if len(self._masks) >= _MASKS:
                self._masks.clear()
            self._masks[key] = found
        return found

    def nearest(
        self, lon: float, lat: float, limit: int, statuses: tuple[str, ...], klass: str | None, min_free: int
    ) -> list[tuple[float, int, int]]:
        """The LIMIT nearest shelters passing the filters, as (distance, id, position), nearest first."""
        key = (statuses, klass, min_free)
        excluded, count = self._mask(key)
        k = min(limit, count)
        if k == 0:
            return []
        p, at = unit_vector(lon, lat), self.sites.origin(lon, lat)
        if k <= CELL_SITES // 2:
            found = self._from_cell(key, excluded, k, at, p)
            if found is not None:
                self.cell_answers += 1
                return found
        return self._from_bounds(excluded, count, k, at, p)

    def _measure(
        self, ranked: Iterable[tuple[float, int]], k: int, at: tuple, p: Vector
    ) -> tuple[list[tuple[float, int, int]], float, str]:
        """Exact distances of RANKED (bound in metres, position; in bound order) until the next bound
        is past the k-th distance found: (found, that k-th distance, why it ended). It ends
        "stopped" there, "excluded" at a bound of infinity (a site the filters leave out: only
        such sites follow), or at the "end"."""
        sites, ids = self.sites, self.id_list
        found: list[tuple[float, int, int]] = []
        kth = math.inf
        for b, i in ranked:
            if b > kth:
                return found, kth, "stopped"  # this site and every later one are farther than the k found
            if b == math.inf:
                return found, kth, "excluded"
            found.append((sites.distance(i, at, p), ids[i], i))
            if len(found) >= k:
                found.sort()
                kth = found[k - 1][0]
        return found, kth, "end"

    def _from_cell(self, key: tuple, excluded: np.ndarray, k: int, at: tuple, p: Vector):
        """The answer from the list of the point's grid cell; None when the list cannot tell."""
        lbs, order, complete = self._cell(key, excluded, at[0], at[1])
        found, kth, ended = self._measure(zip(lbs, order, strict=True), k, at, p)
        # A list that ran into a left-out site (infinity) held every site the filters pass; past a
        # list's end are sites whose bounds from the cell are all at least its last one's.
        if ended != "end" or complete or (len(found) >= k and kth < lbs[-1]):
            found.sort()
            return found[:k]
        return None

    def _cell(self, key: tuple, excluded: np.ndarray, lon: float, lat: float):
        """The cell's sites by their bound from anywhere in the cell (metres), nearest CELL_SITES."""
        ix, iy = math.floor(lon / self._dx), math.floor(lat / self._dy)
        found = self._cells.get((key, ix, iy))
        if found is not None:
            return found
        # For any point q of the cell, chord(q, site) ≥ chord(centre, site) − chord(q, centre)
        # (the triangle inequality in space): a bound from the centre, less the cell's reach, holds
        # from every point of it. The reach is the farthest of the corners and edge midpoints, with
        # a margin for the sphere's curvature over 300 m (far below 1%).
        x0, y0, dx, dy = ix * self._dx, iy * self._dy, self._dx, self._dy
        centre = unit_vector(x0 + dx / 2, y0 + dy / 2)
        xs = np.array([x0, x0 + dx, x0, x0 + dx, x0 + dx / 2, x0 + dx / 2, x0, x0 + dx])
        ys = np.array([y0, y0, y0 + dy, y0 + dy, y0, y0 + dy, y0 + dy / 2, y0 + dy / 2])
        reach = float(np.linalg.norm(unit_vectors(xs, ys) - centre, axis=1).max()) * 1.01
        bound = self.sites.lower_bounds(centre, excluded)
        m = min(CELL_SITES, len(bound))
        first = bound.argpartition(m - 1)[:m] if m < len(bound) else np.arange(len(bound))
        first = first[bound[first].argsort(kind="stable")]
        found = (((bound[first] - reach) * R_LOWER).tolist(), first.tolist(), m == len(bound))
        if len(self._cells) >= CELLS:
            self._cells.clear()
        self._cells[(key, ix, iy)] = found
        return found

    def _from_bounds(self, excluded: np.ndarray, count: int, k: int, at: tuple, p: Vector):
        """The answer from every site's bound from the point itself."""
        bound = self.sites.lower_bounds(p, excluded)
        m = min(count, 2 * k + 6)
        first = bound.argpartition(m - 1)[:m] if m < len(bound) else np.arange(len(bound))
        # (bound, position) in bound order; bounds are in R_LOWER metres (geometry/geodesic.py).
        ranked = sorted(zip((bound[first] * R_LOWER).tolist(), first.tolist(), strict=True))
        found, kth, ended = self._measure(ranked, k, at, p)
        if ended != "stopped":
            # Every candidate was measured: a site outside them whose bound is within the k-th
            # distance may still be nearer.
            taken = {i for _, i in ranked}
            sites, ids = self.sites, self.id_list
            for i in np.flatnonzero(bound * R_LOWER <= kth).tolist():
                if i not in taken:
                    found.append((sites.distance(i, at, p), ids[i], i))
        found.sort()
        return found[:k]

    def body(self, lon: float, lat: float, inside: bool, found: list[tuple[float, int, int]]) -> bytes:
        """The FeatureCollection shelter_nearest.sql writes, byte for byte."""
        head, tail = self.head, self.tail
        parts = [
            b'{"type" : "FeatureCollection", "origin" : {"lon" : ',
            pg_float(lon),
            b', "lat" : ',
            pg_float(lat),
            b'}, "inside_city" : ',
            b"true" if inside else b"false",
            b', "numberReturned" : %d, "features" : [' % len(found),
        ]
        for n, (d, _, i) in enumerate(found):
            parts += (b", " if n else b"", head[i], pg_metres(d), tail[i])
        parts.append(b"]}")
        return b"".join(parts)


class NearestShelters:
    """The shelters of one worker process in memory; answers /shelters/nearest (None: ask the database)."""

    def __init__(self, pool: AsyncConnectionPool, reader: OutboxReader, lookup: LookupService) -> None:
        self.pool = pool
        self.reader = reader
        self.lookup = lookup  # answers whether the city holds the point
        self.sites: ShelterSites | None = None
        self.loaded_after = -1  # the read after which the loaded sites' snapshot began
        self.changed_at = 0  # the last read that found a change to shelters (or a reset)
        self._flight: tuple[int, asyncio.Task] | None = None
        self._closed = False
        self.loads = 0
        self.answered = 0
        self.fallbacks = 0
        self.last_load_ms: float | None = None
        reader.subscribe(self._on_batch, self._on_close)

    def _on_batch(self, batch: Batch) -> None:
        if batch.reset or any(e.kind == "feature_changed" and e.target == "shelters" for e in batch.events):
            self.changed_at = batch.read

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
        if not self.current() and not await self._refresh():
            self.fallbacks += 1
            return None
        inside = self.lookup.city_holds(lon, lat)
        sites = self.sites
        if inside is None or sites is None:
            self.fallbacks += 1
            return None
        self.answered += 1
        return sites.body(lon, lat, inside, sites.nearest(lon, lat, limit, statuses, klass, min_free))

    async def _refresh(self) -> bool:
        """Await a load that makes the sites current (one at a time, shared); False if none can."""
        for _ in range(3):
            if self.current():
                return True
            ready = self.reader.complete_from
            if ready is None or self._closed:
                return False
            flight = self._flight
            if flight is None:
                n = self.reader.reads  # the load's snapshot begins after this read: it holds its commits
                task = asyncio.get_running_loop().create_task(self._load(n), name="gridrisk-shelter-load")
                flight = self._flight = (n, task)
            try:
                await asyncio.shield(flight[1])
            except Exception:
                if flight[0] >= max(ready, self.changed_at):
                    return False  # the load this request needed failed: the database answers
        return self.current()

    async def _load(self, n: int) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with self.pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
                rows = await (await cur.execute(sql("shelter_sites"))).fetchall()
            sites = ShelterSites(rows, self.sites)
            if n > self.loaded_after:
                self.sites, self.loaded_after = sites, n
            self.loads += 1
            self.last_load_ms = round((loop.time() - started) * 1000, 1)
        except Exception:
            log.exception("loading the shelters for nearest answers failed; the database answers meanwhile")
            raise
        finally:
            self._flight = None

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
            "cells": len(self.sites._cells) if self.sites is not None else 0,
            "fallbacks": self.fallbacks,
        }
