"""The /cells/at answer exactly as cells_at.sql writes it, byte for byte, from parts rendered once.

PostgreSQL renders every part when it is loaded (cells_at_*.sql, with the same json_build_object
calls as cells_at.sql): a cell's static members (code … population), its live members (colour …
counts) and its workers list, so each string escape and number is PostgreSQL's own. Only the
point's lon/lat are formatted here: `pg_float` writes a float8 the way float8out does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal

import numpy as np
import orjson

from gridrisk.lookup.index import CellIndex

WORKERS_KEY = b', "workers" : '
NO_WORKERS = b"[]"
_NULL = b"null"
_INSIDE, _OUTSIDE = b', "inside_city" : true, "cells" : ', b', "inside_city" : false, "cells" : '


def pg_float(x: float) -> bytes:
    """X as PostgreSQL writes a float8: shortest round-trip digits, exponent below 1e-4 and from 1e15.

    Exact for every magnitude below 2^53 (every coordinate); beyond it PostgreSQL writes integral
    values with all their digits, which no lon/lat ever is.
    """
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x!r}")
    text = repr(float(x))
    if "e" not in text and abs(x) < 1e15:
        return (text[:-2] if text.endswith(".0") else text).encode()
    sign, digits, exponent = Decimal(text).as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1  # type: ignore[operator]
    power = len(digits) - 1 + exponent  # type: ignore[operator]
    lead = "-" if sign else ""
    if -4 <= power < 15:
        return (lead + format(Decimal((0, digits, exponent)), "f")).encode()
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{lead}{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}".encode()


def head_of(cell_json: str) -> bytes:
    """The static part of a cell as cells_at_cells.sql renders it, open for the live members."""
    assert cell_json.endswith("}")
    return cell_json[:-1].encode() + b", "


def live_of(members_json: str) -> bytes:
    """The live members as cells_at_live*.sql render them (an object), without their braces."""
    assert members_json.startswith("{") and members_json.endswith("}")
    return members_json[1:-1].encode()


class Composer:
    """Writes answers for one index from the live values beside it (lists updated in place).

    LIVE[i][pos] is layer i's cell's live members (None: the cell has no row in cell_risk, which
    cells_at.sql would skip: the caller then asks the database), WORKERS[i][pos] its workers list.
    """

    def __init__(
        self, index: CellIndex, live: Sequence[list[bytes | None]], workers: Sequence[list[bytes]]
    ) -> None:
        self.index = index
        parts = [
            (i, orjson.dumps(layer.name) + b" : ", layer.heads, live[i], workers[i])
            for i, layer in enumerate(index.layers)
        ]
        self.grid = [p for p, layer in zip(parts, index.layers, strict=True) if layer.kind == "grid"]
        self.admin = [p for p, layer in zip(parts, index.layers, strict=True) if layer.kind == "admin"]

    @staticmethod
    def _members(parts: list, row: Sequence[int], out: list[bytes]) -> bool:
        """Append one json_object_agg of layer → cell to OUT; False when a hit cell has no live values."""
        if not parts:
            out.append(_NULL)
            return True
        sep = b"{ "
        for i, key, heads, live, workers in parts:
            pos = row[i]
            if pos < 0:
                out += (sep, key, _NULL)
            else:
                members = live[pos]
                if members is None:
                    return False
                out += (sep, key, heads[pos], members, WORKERS_KEY, workers[pos], b"}")
            sep = b", "
        out.append(b" }")
        return True

    def _point(self, lon: float, lat: float, row: Sequence[int], inside: bool, out: list[bytes]) -> bool:
        """Append the answer for one point to OUT, in parts; False when the database must answer it."""
        out += (
            b'{"lon" : ',
            pg_float(lon),
            b', "lat" : ',
            pg_float(lat),
            _INSIDE if inside else _OUTSIDE,
        )
        if not self._members(self.grid, row, out):
            return False
        out.append(b', "admin" : ')
        if not self._members(self.admin, row, out):
            return False
        out.append(b"}")
        return True

    def one(self, lon: float, lat: float, row: Sequence[int], inside: bool) -> bytes | None:
        """The answer for one point (None: the database must answer it)."""
        out: list[bytes] = []
        return b"".join(out) if self._point(lon, lat, row, inside, out) else None

    def many(
        self, lons: Sequence[float], lats: Sequence[float], hits: np.ndarray, inside: np.ndarray
    ) -> bytes | None:
        """The answers for many points, in order, joined by commas (None: the database must answer)."""
        out: list[bytes] = []
        for lon, lat, row, flag in zip(lons, lats, hits.tolist(), inside.tolist(), strict=True):
            if out:
                out.append(b",")
            if not self._point(lon, lat, row, flag, out):
                return None
        return b"".join(out)
