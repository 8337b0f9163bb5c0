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


def make_pool(
    settings: Settings, *, url: str | None = None, name: str = "gridrisk", max_size: int | None = None
) -> AsyncConnectionPool:
    """Build (not open) the pool for URL (default: the primary); rows are dicts, timeouts are set."""

    async def configure(conn: AsyncConnection) -> None:
        conn.row_factory = dict_row  # type: ignore[assignment]
        # No request can hold the database for long: a runaway statement, a wait for a row lock,
        # or a transaction left idle (a client gone mid-request) each end with an error (503).
        await conn.execute(
            f"SET statement_timeout = {int(settings.statement_timeout_ms)};"
            f" SET lock_timeout = {int(settings.lock_timeout_ms)};"
            f" SET idle_in_transaction_session_timeout = {int(settings.idle_in_transaction_timeout_ms)}"
        )
        await conn.execute("SET application_name = 'gridrisk'")
        # The hot statements are prepared lookups whose plan does not depend on the values;
        # re-planning them per call (PostgreSQL's default for the first runs) doubles their cost.
        await conn.execute("SET plan_cache_mode = force_generic_plan")

    return AsyncConnectionPool(
        url or settings.database_url,
        min_size=min(settings.pool_min_size, max_size or settings.pool_max_size),
        max_size=max_size or settings.pool_max_size,
        timeout=settings.pool_timeout_s,
        configure=configure,
        # Reads run in autocommit: one round trip instead of BEGIN + query + COMMIT. Every write
        # opens its own transaction explicitly (see `transaction`), so it stays all-or-nothing.
        kwargs={"autocommit": True},
        # No per-checkout probe: it would double the round trips of every request. A connection
        # broken by a database restart fails one request (503) and the pool discards it.
        # Reconnect attempts keep going while the database is away; the app recovers by itself.
        reconnect_timeout=24 * 3600,
        open=False,
        name=name,
    )


async def open_pool(pool: AsyncConnectionPool) -> None:
    """Open the pool without waiting: the service starts (and answers 503) while the DB is down."""
    await pool.open(wait=False)


@asynccontextmanager
async def transaction(pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnection]:
    """One connection in one transaction: committed on success, rolled back on any error."""
    async with pool.connection() as conn, conn.transaction():
        yield conn


async def connect_dedicated(
    conninfo: str, application_name: str, *, statement_timeout_ms: int, generic_plans: bool = False
) -> AsyncConnection:
    """A long-lived connection of its own, outside the pool (LISTEN, the outbox probe, the lookup's
    syncs), autocommit, its statements bounded; closed again if it cannot be set up."""
    conn = await AsyncConnection.connect(
        conninfo,
        autocommit=True,
        connect_timeout=5,
        application_name=application_name,
        # Notice a silently dead network within a minute even while idle.
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
    setup = f"SET statement_timeout = {int(statement_timeout_ms)}"
    if generic_plans:
        setup += "; SET plan_cache_mode = force_generic_plan"
    try:
        await conn.execute(setup)
    except BaseException:
        await conn.close()
        raise
    return conn
