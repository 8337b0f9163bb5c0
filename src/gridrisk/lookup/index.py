"""Every layer's cells in one in-memory spatial index (a shapely 2 STRtree): no database, no web.

The index holds the very pieces PostGIS answers /cells/at from (`cell_pieces`: each cell cut into
polygons of at most 64 vertices) and tests them with GEOS's `intersects`, boundary included, as
ST_Intersects does: a point on a cut or on a shared edge meets exactly the pieces PostGIS sees.
Within a layer, cells are numbered in the database's code order (ORDER BY code, in its collation),
so the edge rule, "the touching cell with the smallest code", is the smallest position.
An index is immutable once built: a re-imported layer makes a new one (`with_layers`), so a lookup
running in a thread keeps a consistent index while the event loop installs the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import shapely
from shapely.strtree import BinaryPredicate

# Boxes of changed features are widened by this much (degrees, about a centimetre) before they are
# matched against cell envelopes: PostGIS rounds cached boxes outward to float4, and a box that
# merely touches a cell must still find it.
BOX_PAD = 1e-7
_FAR = np.iinfo(np.int32).max

if TYPE_CHECKING:
    from gridrisk.lookup.tiles import TileAnswers


@dataclass(frozen=True, eq=False)
class LayerCells:
    """One layer as loaded: its cells in code order, their static JSON members, and their pieces."""

    name: str
    kind: str  # 'grid' or 'admin'
    version: int
    ids: np.ndarray  # cells.id per position (int64)
    codes: tuple[str, ...]
    heads: tuple[bytes, ...]  # per position: the cell's static JSON members (see answer.py)
    pieces: np.ndarray  # shapely polygons
    piece_pos: np.ndarray  # per piece, its cell's position (int32)
    pos_of_code: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pos_of_code", {code: i for i, code in enumerate(self.codes)})

    @classmethod
    def build(
        cls,
        name: str,
        kind: str,
        version: int,
        cells: Iterable[tuple[int, str, bytes]],
        pieces: Iterable[tuple[int, bytes]],
    ) -> LayerCells:
        """From CELLS (id, code, head) in code order and PIECES (cell id, WKB) of those cells."""
        cells = list(cells)
        pos_of_id = {cell_id: i for i, (cell_id, _, _) in enumerate(cells)}
        pieces = [(pos_of_id.get(cell_id, -1), wkb) for cell_id, wkb in pieces]
        pieces = [(pos, wkb) for pos, wkb in pieces if pos >= 0]
        return cls(
            name,
            kind,
            version,
            np.fromiter((c[0] for c in cells), np.int64, len(cells)),
            tuple(c[1] for c in cells),
            tuple(c[2] for c in cells),
            shapely.from_wkb([wkb for _, wkb in pieces]) if pieces else np.empty(0, object),
            np.fromiter((pos for pos, _ in pieces), np.int32, len(pieces)),
        )

    def __len__(self) -> int:
        return len(self.codes)


class CellIndex:
    """Layers (in the database's name order) and the city outline, all in one STRtree."""

    def __init__(self, layers: Sequence[LayerCells], city: np.ndarray) -> None:
        self.layers = tuple(layers)
        self.city = city
        self._city_tree: shapely.STRtree | None = None  # city_holds's, made on first use
        self.city_layer = len(self.layers)  # the layer number the city outline's parts carry
        self.by_name = {layer.name: i for i, layer in enumerate(self.layers)}
        geoms = np.concatenate([*(layer.pieces for layer in self.layers), city]).astype(object)
        self.piece_layer = np.concatenate(
            [*(np.full(len(layer.pieces), i, np.int16) for i, layer in enumerate(self.layers))]
            + [np.full(len(city), self.city_layer, np.int16)]
        )
        self.piece_pos = np.concatenate(
            [*(layer.piece_pos for layer in self.layers), np.zeros(len(city), np.int32)]
        ).astype(np.int32)
        # Python lists too: one point's few hits are read faster from them than from arrays.
        self._layer_of = self.piece_layer.tolist()
        self._pos_of = self.piece_pos.tolist()
        self.tree = shapely.STRtree(geoms)
        # One point's query, called per lookup: shapely's C tree directly, without the public
        # method's argument handling (a third of its cost); the public one where that is absent.
        raw = getattr(self.tree, "_tree", None)
        self._query_one = (
            (lambda point, _q=raw.query, _p=BinaryPredicate.get_value("intersects"): _q(point, _p)[1])
            if raw is not None and hasattr(raw, "query")
            else (lambda point: self.tree.query(point[0], predicate="intersects"))
        )
        # GEOS builds the tree on its first query: build it here, before threads share the index.
        self.tree.query(shapely.points(0.0, 0.0))
        self.pieces = len(geoms)
        # Answers by tile (lookup/tiles.py), attached once built in the background; until then,
        # and for points in tiles a boundary crosses, the tree answers.
        self.tiles: TileAnswers | None = None

    def with_layers(
        self, layers: Mapping[str, LayerCells], order: Sequence[str], city: np.ndarray | None = None
    ) -> CellIndex:
        """A new index of the layers named in ORDER: from LAYERS where given, else this index's."""
        current = {layer.name: layer for layer in self.layers}
        chosen = [layers.get(name) or current[name] for name in order if name in layers or name in current]
        return CellIndex(chosen, self.city if city is None else city)

    def locate_one(self, x: float, y: float) -> tuple[list[int], bool]:
        """The point's cell position in every layer (-1: none) and whether the city holds it."""
        tiles = self.tiles
        if tiles is not None:
            region = tiles.region(x, y)
            if region:
                return tiles.rows[region].tolist(), tiles.inside[region]
        found = self._query_one(np.array([shapely.Point(x, y)]))
        row = [-1] * len(self.layers)
        inside = False
        city, layer_of, pos_of = self.city_layer, self._layer_of, self._pos_of
        for piece in found.tolist():
            layer, pos = layer_of[piece], pos_of[piece]
            if layer == city:
                inside = True
            elif row[layer] < 0 or pos < row[layer]:
                row[layer] = pos
        return row, inside

    def city_holds(self, x: float, y: float) -> bool:
        """Whether the city outline holds the point (its boundary too), as city_parts says."""
        tiles = self.tiles
        if tiles is not None:
            region = tiles.region(x, y)
            if region:
                return bool(tiles.inside[region])
        if self._city_tree is None:  # the outline's parts alone: far fewer than every layer's pieces
            self._city_tree = shapely.STRtree(self.city)
        return bool(len(self._city_tree.query(shapely.Point(x, y), predicate="intersects")))

    def locate(self, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per point: its cell position in every layer (n × layers, -1: none); whether the city holds it."""
        n = len(xs)
        points = shapely.points(np.asarray(xs, float), np.asarray(ys, float))
        pt, piece = self.tree.query(points, predicate="intersects")
        layer = self.piece_layer[piece]
        inside = np.zeros(n, bool)
        city = layer == self.city_layer
        inside[pt[city]] = True
        cells = ~city
        best = np.full((n, len(self.layers)), _FAR, np.int32)
        np.minimum.at(best, (pt[cells], layer[cells]), self.piece_pos[piece[cells]])
        best[best == _FAR] = -1
        return best, inside

    def meeting(self, boxes: Sequence[Sequence[float]]) -> list[np.ndarray]:
        """Per layer, the positions of the cells with a piece whose envelope meets one of BOXES.

        A superset of the cells a feature inside those boxes can lie in (the boxes are padded).
        """
        if not boxes:
            return [np.empty(0, np.int32) for _ in self.layers]
        b = np.asarray(boxes, float).reshape(-1, 4)
        shapes = shapely.box(b[:, 0] - BOX_PAD, b[:, 1] - BOX_PAD, b[:, 2] + BOX_PAD, b[:, 3] + BOX_PAD)
        _, piece = self.tree.query(shapes)
        layer, pos = self.piece_layer[piece], self.piece_pos[piece]
        return [np.unique(pos[layer == i]) for i in range(len(self.layers))]

    def stats(self) -> dict[str, int]:
        return {
            "layers": len(self.layers),
            "cells": sum(len(layer) for layer in self.layers),
            "pieces": self.pieces,
            "vertices": int(shapely.get_num_coordinates(self.tree.geometries).sum()),
        }
