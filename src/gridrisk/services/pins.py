"""One cell's place on the four-colour map, and pinning its colour by hand (or unpinning it)."""

from __future__ import annotations

from psycopg import AsyncConnection

from gridrisk.db.sql_files import sql
from gridrisk.services.records import cell_id_or_404, fetch_one, no_cell


async def map_cell(conn: AsyncConnection, layer: str, code: str) -> dict:
    """The cell's colour, computed colour, pin and counts; 404 when there is no such cell."""
    row = await fetch_one(conn, "risk_map_cell", {"layer": layer, "code": code})
    if row is None:
        raise no_cell(layer, code)
    return row


async def set_pin(
    conn: AsyncConnection, layer: str, code: str, colour: str | None, reason: str, by: str
) -> dict:
    """Pin the cell to COLOUR (None: unpin), recorded with REASON, in one transaction; the cell after."""
    async with conn.transaction():
        cell_id = await cell_id_or_404(conn, layer, code)
        await conn.execute(
            sql("risk_map_pin"), {"cell_id": cell_id, "colour": colour, "reason": reason, "by": by}
        )
        await conn.execute(sql("risk_map_pin_notify"))
        return await map_cell(conn, layer, code)
