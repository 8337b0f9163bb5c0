"""Every shelter as the nearest-shelter answers hold it in memory, and the search over them.

The rows come from db/sql/shelter_sites.sql: what the filters of GET /shelters/nearest read
(status, class, `spare`: places left once those held for evacuees are counted), the site, and the
feature as shelter_nearest.sql writes it with its distance left out. The answer is
shelter_nearest.sql's, byte for byte: the same shelters in the same order (distance, then id),
the same distances (geometry/geodesic.py), the same text.

Finding the k nearest exactly. Every site has a lower bound on its distance from a point
(geometry/geodesic.py); exact distances are measured in bound order until the next bound is past
the k-th distance found, and nothing after it can be nearer. The bounds come from
- the point's grid cell: the sites nearest the cell, ranked by a bound that holds from anywhere in
  it, kept per cell (no per-request array work for most requests), or else
- every site's bound from the point itself (numpy), when the list cannot tell: many shelters asked
  for, filters that leave few, a list that ends before the k-th distance.
Cell lists depend on the sites' geometry alone; a check-in changes attributes in place (`update`),
so the lists survive it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import shapely

from gridrisk.geometry.geodesic import R_LOWER, SiteSet, Vector, box_cap, unit_vector
from gridrisk.lookup.answer import pg_float

_HOLE = b'"distance_m" : null'  # where each feature's distance goes (shelter_sites.sql)
_TENTH = Decimal("0.1")
_MASKS = 64  # filter masks kept (the default one is nearly always asked)
# Candidate lists by grid cell (`_cell`): the cell's side, how many sites a list holds, and how
# many lists are kept (each about 1.5 KB).
CELL_M = 1000.0
CELL_SITES = 32
CELLS = 20_000

Found = list[tuple[float, int, int]]  # (distance, id, position), nearest first


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


def _split(feature: str) -> tuple[bytes, bytes]:
    """A feature's text before and after its distance."""
    text = feature.encode()
    at = text.index(_HOLE)
    return text[: at + len(_HOLE) - 4], text[at + len(_HOLE) :]


class ShelterSites:
    """Every shelter: the sites for distances, the filters' columns, the features' text."""

    def __init__(self, rows: Sequence[tuple], previous: ShelterSites | None = None) -> None:
        self.id_list: list[int] = [r[0] for r in rows]
        self.pos_of = {sid: pos for pos, sid in enumerate(self.id_list)}
        self.status = np.array([r[1] for r in rows], object)
        self.klass = np.array([r[2] for r in rows], object)
        self.spare = np.array([r[3] for r in rows], np.int64)
        wkbs = [bytes(r[4]) for r in rows]
        # A reload keeps most sites' geometry: reuse what was built from it.
        self.sites = SiteSet.reusing(shapely.from_wkb(wkbs), wkbs, previous.sites if previous else None)
        split = [_split(r[5]) for r in rows]
        self.head, self.tail = [h for h, _ in split], [t for _, t in split]
        self._masks: dict[tuple, tuple[np.ndarray, int, list[bool]]] = {}
        # The cells' grid: square-ish at the sites' mean latitude (any size would be exact).
        mean_z = float(np.clip(self.sites.centre[:, 2].mean(), -1.0, 1.0)) if rows else 0.0
        self._dy = CELL_M / 111_320.0
        self._dx = self._dy / max(math.cos(math.asin(mean_z)), 0.1)
        self._cells: dict[tuple[int, int], tuple[list[float], list[int], bool]] = {}
        self.cell_answers = 0  # answered from a cell's list (the rest: from every site's bound)

    def __len__(self) -> int:
        return len(self.id_list)

    @property
    def cells_kept(self) -> int:
        """How many grid cells' candidate lists are kept."""
        return len(self._cells)

    def update(self, ids: Sequence[int], rows: Sequence[tuple]) -> bool:
        """Take the rows of shelters IDS in place, when only their attributes changed (a check-in, a
        reservation, an edit that kept the site); False, changing nothing, when one was added,
        removed or moved (then a new ShelterSites is needed)."""
        if len(rows) != len(ids) or any(
            (pos := self.pos_of.get(r[0])) is None or bytes(r[4]) != self.sites.keys[pos] for r in rows
        ):
            return False
        for r in rows:
            pos = self.pos_of[r[0]]
            self.status[pos], self.klass[pos], self.spare[pos] = r[1], r[2], r[3]
            self.head[pos], self.tail[pos] = _split(r[5])
        self._masks.clear()
        return True

    def _mask(self, key: tuple) -> tuple[np.ndarray, int, list[bool]]:
        """For the filters KEY (statuses, class, min_free): what they leave out (infinity, else 0:
        added to bounds), how many pass, and which (by position)."""
        found = self._masks.get(key)
        if found is None:
            statuses, klass, min_free = key
            ok = np.isin(self.status, statuses) & (self.spare >= min_free)
            if klass is not None:
                ok &= self.klass == klass
            found = (np.where(ok, 0.0, np.inf), int(ok.sum()), ok.tolist())
            if len(self._masks) >= _MASKS:
                self._masks.clear()
            self._masks[key] = found
        return found

    def nearest(
        self, lon: float, lat: float, limit: int, statuses: tuple[str, ...], klass: str | None, min_free: int
    ) -> Found:
        """The LIMIT nearest shelters passing the filters, nearest first."""
        excluded, count, passes = self._mask((statuses, klass, min_free))
        k = min(limit, count)
        if k == 0:
            return []
        p, at = unit_vector(lon, lat), self.sites.origin(lon, lat)
        if k <= CELL_SITES // 2:
            found = self._from_cell(passes, k, at, p)
            if found is not None:
                self.cell_answers += 1
                return found
        return self._from_bounds(excluded, count, k, at, p)

    def _measure(
        self, ranked: Iterable[tuple[float, int]], passes: list[bool] | None, k: int, at: tuple, p: Vector
    ) -> tuple[Found, float, bool]:
        """Exact distances of RANKED (bound in metres, position; in bound order) that PASSES the
        filters, until the next bound is past the k-th distance found: (found, that k-th distance,
        whether a bound stopped it)."""
        sites, ids = self.sites, self.id_list
        found: Found = []
        kth = math.inf
        for b, i in ranked:
            if b > kth:
                return found, kth, True  # this site and every later one are farther than the k found
            if passes is not None and not passes[i]:
                continue
            found.append((sites.distance(i, at, p), ids[i], i))
            if len(found) >= k:
                found.sort()
                kth = found[k - 1][0]
        return found, kth, False

    def _from_cell(self, passes: list[bool], k: int, at: tuple, p: Vector) -> Found | None:
        """The answer from the list of the point's grid cell; None when the list cannot tell."""
        bounds, order, complete = self._cell(at[0], at[1])
        found, kth, stopped = self._measure(zip(bounds, order, strict=True), passes, k, at, p)
        # Past a list's end are sites whose bounds from the cell are all at least its last one's.
        if stopped or (len(found) >= k and (complete or kth < bounds[-1])):
            found.sort()
            return found[:k]
        return None

    def _cell(self, lon: float, lat: float) -> tuple[list[float], list[int], bool]:
        """The sites nearest the point's cell, by their bound from anywhere in it (metres), and
        whether the list holds every site."""
        ix, iy = math.floor(lon / self._dx), math.floor(lat / self._dy)
        found = self._cells.get((ix, iy))
        if found is not None:
            return found
        # For any point q of the cell, chord(q, site) ≥ chord(centre, site) − chord(q, centre)
        # (the triangle inequality in space): a bound from the centre, less the cell's reach (a
        # chord), holds from every point of it.
        x0, y0 = ix * self._dx, iy * self._dy
        centre, reach = box_cap(x0, y0, x0 + self._dx, y0 + self._dy)
        bound = self.sites.lower_bounds(centre)
        m = min(CELL_SITES, len(bound))
        first = bound.argpartition(m - 1)[:m] if m < len(bound) else np.arange(len(bound))
        first = first[bound[first].argsort(kind="stable")]
        found = (((bound[first] - reach) * R_LOWER).tolist(), first.tolist(), m == len(bound))
        if len(self._cells) >= CELLS:
            self._cells.clear()
        self._cells[(ix, iy)] = found
        return found

    def _from_bounds(self, excluded: np.ndarray, count: int, k: int, at: tuple, p: Vector) -> Found:
        """The answer from every site's bound from the point itself."""
        bound = self.sites.lower_bounds(p, excluded)
        m = min(count, 2 * k + 6)
        first = bound.argpartition(m - 1)[:m] if m < len(bound) else np.arange(len(bound))
        # (bound, position) in bound order; bounds are in R_LOWER metres (geometry/geodesic.py).
        ranked = sorted(zip((bound[first] * R_LOWER).tolist(), first.tolist(), strict=True))
        found, kth, stopped = self._measure((r for r in ranked if r[0] != math.inf), None, k, at, p)
        if not stopped:
            # Every candidate was measured: a site outside them whose bound is within the k-th
            # distance may still be nearer.
            taken = {i for _, i in ranked}
            sites, ids = self.sites, self.id_list
            for i in np.flatnonzero(bound * R_LOWER <= kth).tolist():
                if i not in taken:
                    found.append((sites.distance(i, at, p), ids[i], i))
        found.sort()
        return found[:k]

    def body(self, lon: float, lat: float, inside: bool, found: Found) -> bytes:
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
