"""Reading what the lookup index holds from PostGIS: layers, cells and pieces, live values, workers.

Each function runs its query (db/sql/cells_at_*.sql) on the caller's connection; the caller
decides the transaction (a load reads everything in one REPEATABLE READ snapshot). Geometry is
parsed in a worker thread (GEOS releases the GIL), never on the event loop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import psycopg
import shapely
from psycopg.rows import tuple_row

from gridrisk.db.sql_files import sql
from gridrisk.lookup.answer import head_of, live_of
from gridrisk.lookup.index import LayerCells


@dataclass(frozen=True, slots=True)
class LayerRow:
    name: str
    kind: str
    version: int


async def _rows(conn: psycopg.AsyncConnection, name: str, params: dict | None = None) -> list[tuple]:
    async with conn.cursor(row_factory=tuple_row) as cur:
        await cur.execute(sql(name), params)
        return await cur.fetchall()


async def begin_snapshot(conn: psycopg.AsyncConnection) -> None:
    """Make the transaction just begun read one snapshot (the first statement in it)."""
    await conn.execute(sql("cells_at_snapshot"))


async def read_layers(conn: psycopg.AsyncConnection) -> list[LayerRow]:
    """The layers in the answer's order (by name), with their kinds and versions."""
    return [LayerRow(*row) for row in await _rows(conn, "cells_at_layers")]


async def read_items(conn: psycopg.AsyncConnection) -> frozenset[str]:
    """The tables whose items colour the map."""
    return frozenset(row[0] for row in await _rows(conn, "cells_at_items"))


async def read_layer(conn: psycopg.AsyncConnection, layer: LayerRow) -> LayerCells:
    """LAYER's cells in code order with their static JSON, and their pieces."""
    cells = await _rows(conn, "cells_at_cells", {"layer": layer.name})
    pieces = await _rows(conn, "cells_at_pieces", {"layer": layer.name})
    return await asyncio.to_thread(
        LayerCells.build,
        layer.name,
        layer.kind,
        layer.version,
        ((cell_id, code, head_of(head)) for cell_id, code, head in cells),
        ((cell_id, bytes(wkb)) for cell_id, wkb in pieces),
    )


async def read_city(conn: psycopg.AsyncConnection) -> np.ndarray:
    """The city outline's parts (polygons)."""
    rows = await _rows(conn, "cells_at_city")
    if not rows:
        return np.empty(0, object)
    return await asyncio.to_thread(shapely.from_wkb, [bytes(row[0]) for row in rows])


async def read_live(
    conn: psycopg.AsyncConnection, *, ids: list[int] | None = None, layers: list[str] | None = None
) -> list[tuple[int, bytes]]:
    """(cell id, live members) of the cells IDS, or of every cell of LAYERS."""
    if layers is not None:
        rows = await _rows(conn, "cells_at_live_layers", {"layers": layers})
    else:
        rows = await _rows(conn, "cells_at_live", {"ids": ids or []})
    return [(cell_id, live_of(live)) for cell_id, live in rows]


async def read_workers(conn: psycopg.AsyncConnection) -> dict[tuple[str, str], bytes]:
    """(layer, code) → the cell's workers list, for every cell that has workers."""
    rows = await _rows(conn, "cells_at_workers")
    return {(layer, code): workers.encode() for layer, code, workers in rows}
