"""The psycopg 3 async connection pool, opened and closed in the app's lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from gridrisk.settings import Settings

log = logging.getLogger("gridrisk.db")


def make_pool(settings: Settings) -> AsyncConnectionPool:
    """Build (not open) the pool; connections return rows as dicts and carry a statement timeout."""

    async def configure(conn: AsyncConnection) -> None:
        conn.row_factory = dict_row  # type: ignore[assignment]
        await conn.execute(f"SET statement_timeout = {int(settings.statement_timeout_ms)}")
        await conn.execute("SET application_name = 'gridrisk'")
        await conn.commit()

    return AsyncConnectionPool(
        settings.database_url,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        configure=configure,
        # Checked on checkout, so a database restart costs one failed probe, not a failed request.
        check=AsyncConnectionPool.check_connection,
        # Reconnect attempts keep going while the database is away; the app recovers by itself.
        reconnect_timeout=24 * 3600,
        open=False,
        name="gridrisk",
    )


async def open_pool(pool: AsyncConnectionPool) -> None:
    """Open the pool without waiting: the service starts (and answers 503) while the DB is down."""
    await pool.open(wait=False)


@asynccontextmanager
async def transaction(pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnection]:
    """One connection in one transaction: committed on success, rolled back on any error."""
    async with pool.connection() as conn, conn.transaction():
        yield conn
