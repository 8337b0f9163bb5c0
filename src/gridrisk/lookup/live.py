"""One layer's live values (colours, counts, workers) beside its cells, and the marks on them.

Lists indexed by the cell's position, replaced item by item on the event loop: a reader in
another thread (a large POST /cells/at) sees each item old or new, never torn.
"""

from __future__ import annotations

import os

import numpy as np

from gridrisk.lookup.answer import NO_WORKERS
from gridrisk.lookup.index import LayerCells


class LiveLayer:
    """One layer's live values beside its cells (lists indexed by position, replaced item by item)."""

    __slots__ = ("cells", "live", "marks", "workers")

    def __init__(self, cells: LayerCells) -> None:
        self.cells = cells
        self.live: list[bytes | None] = [None] * len(cells)
        self.workers: list[bytes] = [NO_WORKERS] * len(cells)
        self.marks: dict[int, int] = {}  # position → the read that last marked it


def rss_mb() -> float:
    """This process's resident memory in MB (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0


def apply_live(
    layers: list[LiveLayer],
    cell_of_id: dict[int, tuple[int, int]],
    rows: list[tuple[int, bytes]],
    asked: list[int],
    interned: dict[bytes, bytes],
) -> None:
    """Store live members by cell id; an asked id without a row has none (cells_at.sql skips it)."""
    if len(interned) > 100_000:
        interned.clear()
    for cell_id in asked:
        where = cell_of_id.get(cell_id)
        if where is not None:
            layers[where[0]].live[where[1]] = None
    for cell_id, members in rows:
        where = cell_of_id.get(cell_id)
        if where is not None:
            layers[where[0]].live[where[1]] = interned.setdefault(members, members)


def clear_marks(n: int, dirty: list[tuple[LiveLayer, list[int]]]) -> None:
    """Unmark the positions re-read by a sync begun after read N (a later mark stays)."""
    for live, positions in dirty:
        marks = live.marks
        for p in positions:
            if marks.get(p, n + 1) <= n:
                del marks[p]


def any_marked(layers: list[LiveLayer], hits: np.ndarray) -> bool:
    """Whether any cell in HITS (points × layers positions) is marked."""
    for i, live in enumerate(layers):
        if live.marks and any(p in live.marks for p in hits[:, i].tolist() if p >= 0):
            return True
    return False
