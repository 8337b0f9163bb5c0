"""End the orders of expired warnings: each API process every minute, and `gridrisk warnings expire`."""

from __future__ import annotations

import asyncio
import logging

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from gridrisk.db.sql_files import sql

log = logging.getLogger("gridrisk.warnings")
WHO = "expiry"


def expire_orders(conn: psycopg.Connection) -> dict[str, int]:
    """End every open order of a warning past its valid-until, in one transaction: {orders, warnings}."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql("work_orders_expire"), {"who": WHO}).fetchone()


async def expire_orders_async(conn: psycopg.AsyncConnection) -> dict[str, int]:
    async with conn.transaction():
        cur = await conn.execute(sql("work_orders_expire"), {"who": WHO})
        return dict(await cur.fetchone())


async def run_expiry(pool: AsyncConnectionPool, every_s: float) -> None:
    """Every EVERY_S seconds, end the orders of expired warnings; a failed run is logged and retried."""
    while True:
        await asyncio.sleep(every_s)
        try:
            async with pool.connection() as conn:
                done = await expire_orders_async(conn)
            if done["orders"]:
                log.info("expired %d order(s) of %d warning(s)", done["orders"], done["warnings"])
        except (psycopg.Error, OSError) as exc:  # the database away: the next run tries again
            log.warning(
                "order expiry failed (%s); retrying in %.0f s", str(exc).strip().splitlines()[0], every_s
            )
