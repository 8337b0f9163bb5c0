"""What time alone changes, for warnings and their orders: orders of expired warnings end, and
unfinished orders past their due time are announced as overdue. Each API process runs both every
GRIDRISK_EXPIRY_INTERVAL_S; `gridrisk warnings expire` runs them once (for cron)."""

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
    """End every open order of a warning past its valid-until, then announce the orders newly
    overdue; each in one transaction: {orders, warnings, overdue}."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        done = cur.execute(sql("work_orders_expire"), {"who": WHO}).fetchone()
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        done["overdue"] = cur.execute(sql("work_orders_overdue")).fetchone()["overdue"]
    return done


async def expire_orders_async(conn: psycopg.AsyncConnection) -> dict[str, int]:
    async with conn.transaction():
        cur = await conn.execute(sql("work_orders_expire"), {"who": WHO})
        done = dict(await cur.fetchone())
    async with conn.transaction():
        cur = await conn.execute(sql("work_orders_overdue"))
        done["overdue"] = (await cur.fetchone())["overdue"]
    return done


async def run_expiry(pool: AsyncConnectionPool, every_s: float) -> None:
    """Every EVERY_S seconds, end the orders of expired warnings and announce overdue ones; a failed
    run is logged and retried."""
    while True:
        await asyncio.sleep(every_s)
        try:
            async with pool.connection() as conn:
                done = await expire_orders_async(conn)
            if done["orders"]:
                log.info("expired %d order(s) of %d warning(s)", done["orders"], done["warnings"])
            if done["overdue"]:
                log.info("%d order(s) newly overdue", done["overdue"])
        except (psycopg.Error, OSError) as exc:  # the database away: the next run tries again
            log.warning(
                "order expiry failed (%s); retrying in %.0f s", str(exc).strip().splitlines()[0], every_s
            )
