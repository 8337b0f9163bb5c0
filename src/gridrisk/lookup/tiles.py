"""A raster of the city's small square tiles that no cell boundary crosses, and each one's answer.

Under load a GEOS tree query costs a lookup about 60 µs (the tree and the pieces' vertices are
cold in the cache), most of a lookup. Most points lie well inside a cell of every layer: there the
answer is a property of the place, so it is computed once per region and read back from memory.

Why it is exact (the subtle part). A point maps to tile (floor(u), floor(v)) with u = (x - x0) / dx,
v = (y - y0) / dy, by the same arithmetic when the raster is built and when it is read. Both are
monotonic in x and y, so a point lying on a piece's boundary segment maps into the tile range of that
segment's bounding box, and every tile of that range is marked. An unmarked tile's points thus
form a rectangle that meets no piece boundary: each piece holds all of it or none of it, so all its
points have the same answer. Two edge-adjacent unmarked tiles form a rectangle too, so the answer is
shared by a whole 4-connected region of unmarked tiles, and one point per region (a tile centre,
located with the tree) gives it. A point in a marked tile, or outside the raster, asks the tree.

Stored compactly: blocks of 16 × 16 tiles, a uniform block as its region alone, any other as one
byte per tile indexing the block's few regions.
"""

from __future__ import annotations

import ctypes
import math
from typing import TYPE_CHECKING

import numpy as np
import shapely
from scipy import ndimage

if TYPE_CHECKING:
    from gridrisk.lookup.index import CellIndex

TILE_M = 25.0  # the tile's side where the budget allows (a coarser one beyond it)
MAX_TILES = 24_000_000  # the whole raster's budget: memory while built, time to build
BLOCK = 16  # tiles per block side (one byte per tile indexes the block's regions)
MIXED = 255  # the byte of a tile a boundary crosses
_EPS = 1e-6  # in tiles: a segment ending exactly on a tile edge marks both tiles
_CHUNK = 1_000_000  # boundary segments marked at a time (bounds the build's memory)
_FOUR = ndimage.generate_binary_structure(2, 1)  # edge-adjacent tiles only


def _give_back() -> None:
    """Return the build's freed heap to the system: its temporaries are a few hundred MB, and
    glibc would otherwise keep them in the worker's resident memory for good."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: its allocator decides
        pass


class TileAnswers:
    """Per tile no boundary crosses, the row `locate_one` would give for any point in it."""

    def __init__(self, index: CellIndex, tile_m: float = TILE_M, max_tiles: int = MAX_TILES) -> None:
        geoms = index.tree.geometries
        x0, y0, x1, y1 = (float(v) for v in shapely.total_bounds(geoms))
        metres_per_degree = 111_320.0
        dy = tile_m / metres_per_degree
        dx = tile_m / (metres_per_degree * max(0.1, math.cos(math.radians((y0 + y1) / 2))))
        scale = max(1.0, math.sqrt(((x1 - x0) / dx + 1) * ((y1 - y0) / dy + 1) / max_tiles))
        self.dx, self.dy = dx * scale, dy * scale
        self.x0, self.y0 = x0, y0
        self.tile_m = tile_m * scale
        # Whole blocks: nx, ny multiples of BLOCK.
        self.nx = (int((x1 - x0) / self.dx) // BLOCK + 1) * BLOCK
        self.ny = (int((y1 - y0) / self.dy) // BLOCK + 1) * BLOCK
        self.nbx = self.nx // BLOCK
        marked = self._marked(geoms)
        labels, count = ndimage.label(~marked, structure=_FOUR)
        del marked
        # ndimage numbers regions in the order they are first met, row by row: a region's first
        # tile is where the running maximum of the labels rises.
        flat = labels.ravel()
        running = np.maximum.accumulate(flat)
        rises = np.flatnonzero(np.diff(running, prepend=0) > 0)
        del running
        assert len(rises) == count and np.array_equal(flat[rises], np.arange(1, count + 1))
        iy, ix = np.divmod(rises, self.nx)
        hits, inside = index.locate(self.x0 + (ix + 0.5) * self.dx, self.y0 + (iy + 0.5) * self.dy)
        # Row 0 is no region (a marked tile); region k's row is k.
        self.rows = np.vstack([np.full((1, hits.shape[1]), -1, np.int32), hits.astype(np.int32)])
        self.inside = np.concatenate([[False], inside]).tolist()
        self.regions = count
        self._pack(labels)
        del labels, flat
        _give_back()

    def _marked(self, geoms: np.ndarray) -> np.ndarray:
        """Every tile a piece boundary may touch (the boxes of its segments, cut to a tile or less)."""
        marked = np.zeros(self.ny * self.nx, bool)
        rings = shapely.get_rings(geoms)
        coords, ring = shapely.get_coordinates(rings, return_index=True)
        u = (coords[:, 0] - self.x0) / self.dx
        v = (coords[:, 1] - self.y0) / self.dy
        same = ring[1:] == ring[:-1]
        ua, va, ub, vb = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
        for start in range(0, len(ua), _CHUNK):
            part = slice(start, start + _CHUNK)
            self._mark_segments(marked, ua[part], va[part], ub[part], vb[part])
        return marked.reshape(self.ny, self.nx)

    def _mark_segments(self, marked: np.ndarray, ua, va, ub, vb) -> None:
        # Cut each segment into pieces spanning at most one tile along either axis; each piece's
        # box then covers at most 3 × 3 tiles (with the epsilon), all marked.
        steps = np.maximum(1, np.ceil(np.maximum(np.abs(ub - ua), np.abs(vb - va))).astype(np.int64))
        seg = np.repeat(np.arange(len(ua)), steps)
        k = np.arange(len(seg)) - np.repeat(np.cumsum(steps) - steps, steps)
        n = steps[seg]
        t0, t1 = k / n, (k + 1) / n
        pu0 = ua[seg] + (ub[seg] - ua[seg]) * t0
        pu1 = ua[seg] + (ub[seg] - ua[seg]) * t1
        pv0 = va[seg] + (vb[seg] - va[seg]) * t0
        pv1 = va[seg] + (vb[seg] - va[seg]) * t1
        # The cut points are computed, not exact: widen each piece's box by a tile's thousandth,
        # far more than their rounding, so the pieces' boxes still cover the whole segment.
        pad = 1e-3 + _EPS
        lo_u = np.floor(np.minimum(pu0, pu1) - pad).astype(np.int64)
        hi_u = np.floor(np.maximum(pu0, pu1) + pad).astype(np.int64)
        lo_v = np.floor(np.minimum(pv0, pv1) - pad).astype(np.int64)
        hi_v = np.floor(np.maximum(pv0, pv1) + pad).astype(np.int64)
        for du in range(3):
            for dv in range(3):
                cu, cv = lo_u + du, lo_v + dv
                ok = (cu <= hi_u) & (cv <= hi_v) & (cu >= 0) & (cu < self.nx) & (cv >= 0) & (cv < self.ny)
                marked[cv[ok] * self.nx + cu[ok]] = True

    def _pack(self, labels: np.ndarray) -> None:
        """Blocks: a uniform one as its region number (an int), any other as bytes into its regions."""
        nby = self.ny // BLOCK
        blocks = labels.reshape(nby, BLOCK, self.nbx, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK * BLOCK)
        self.blocks: list[int | bytes] = []
        self.palettes: list[list[int] | None] = []
        first = blocks[:, 0]
        uniform = (blocks == first[:, None]).all(axis=1).tolist()
        for b, flat in enumerate(blocks):
            if uniform[b]:
                self.blocks.append(int(first[b]))
                self.palettes.append(None)
                continue
            regions, codes = np.unique(flat, return_inverse=True)
            if regions[0] == 0:  # marked tiles: MIXED, the others from 0
                codes = np.where(codes == 0, MIXED, codes - 1)
                regions = regions[1:]
            if len(regions) >= MIXED:
                self.blocks.append(0)  # too many regions for a byte: the tree answers
                self.palettes.append(None)
                continue
            self.blocks.append(codes.astype(np.uint8).tobytes())
            self.palettes.append(regions.tolist())
        self.bytes = sum(len(b) for b in self.blocks if isinstance(b, bytes)) + self.rows.nbytes

    def region(self, x: float, y: float) -> int:
        """The region holding (x, y), 0 when the tree must answer (a marked tile, off the raster)."""
        u = (x - self.x0) / self.dx
        v = (y - self.y0) / self.dy
        if not (0.0 <= u < self.nx and 0.0 <= v < self.ny):
            return 0
        iu, iv = int(u), int(v)
        b = (iv // BLOCK) * self.nbx + iu // BLOCK
        block = self.blocks[b]
        if block.__class__ is int:
            return block  # type: ignore[return-value]
        code = block[(iv % BLOCK) * BLOCK + iu % BLOCK]  # type: ignore[index]
        return 0 if code == MIXED else self.palettes[b][code]  # type: ignore[index]

    def stats(self) -> dict[str, float]:
        return {
            "tile_m": round(self.tile_m, 1),
            "tiles": self.nx * self.ny,
            "regions": self.regions,
            "mb": round(self.bytes / 2**20, 1),
        }
