"""The outbox's newest id, asked on a connection of its own over bare libpq: a read that finds nothing new.

Every lookup answered from memory first waits for an outbox read (read-after-write, outbox.py); almost
all of them find nothing. Through psycopg's cursor such a read costs about 140 µs of the worker's
CPU, more than the lookup itself; this asks `SELECT max(id) FROM events` (a backward index probe)
with one prepared statement, sent and read through `psycopg.pq` with the event loop watching the
socket, for about 35 µs. The reader does its full read only when the answer is above its position.

One statement at a time (the reader reads one at a time). Any failure closes the connection: the
caller then reads the usual way, and the probe reconnects on a later call, at most every RETRY_S.
"""

from __future__ import annotations

import asyncio
import logging
import time

import psycopg
from psycopg import pq

from gridrisk.db.pool import connect_dedicated
from gridrisk.db.sql_files import sql

log = logging.getLogger("gridrisk.events")

STATEMENT = b"gridrisk_outbox_newest"
# After a failure, the usual read path is used for this long before connecting again.
RETRY_S = 1.0
# A probe that takes longer means the connection is dead (the server's own timeout is shorter).
TIMEOUT_S = 5.0


class ProbeFailed(Exception):
    """The probe could not answer; read the usual way."""


class NewestProbe:
    """A connection that answers one question, the outbox's newest committed id, as cheaply as it can."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.probes = 0
        self.failures = 0
        self._conn: psycopg.AsyncConnection | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._fd = -1
        self._down_until = 0.0

    @property
    def up(self) -> bool:
        return self._conn is not None

    async def newest(self) -> int | None:
        """The newest id in the outbox in a snapshot taken after this call (None: the outbox is empty).

        Raises ProbeFailed when it cannot tell (not connected yet, a lost connection, a timeout).
        """
        if self._conn is None:
            await self._connect()
        conn = self._conn
        assert conn is not None
        pgconn = conn.pgconn
        try:
            async with asyncio.timeout(TIMEOUT_S):
                pgconn.send_query_prepared(STATEMENT, None)
                if pgconn.flush():  # a few bytes an idle socket always takes; else it is unwell
                    raise ProbeFailed("the connection would not take the statement")
                # Woken by `_readable` once libpq holds the whole result.
                self._waiter = asyncio.get_running_loop().create_future()
                await self._waiter
            result = pgconn.get_result()
            while pgconn.get_result() is not None:
                pass
            if result is None or result.status != pq.ExecStatus.TUPLES_OK:
                message = result.error_message.decode(errors="replace") if result is not None else ""
                raise ProbeFailed(message.strip() or "no result")
            self.probes += 1
            value = result.get_value(0, 0)
            return int(value) if value is not None else None
        except BaseException as exc:
            # Cancelled, timed out or failed mid-statement: the connection's state is unknown.
            self._waiter = None
            await self.aclose(failed=True)
            if isinstance(exc, asyncio.CancelledError | ProbeFailed):
                raise
            raise ProbeFailed(str(exc).strip() or type(exc).__name__) from exc

    def _readable(self) -> None:
        """The socket has data: hand it to libpq, and wake the waiter once the result is whole."""
        conn = self._conn
        if conn is None:
            return
        pgconn = conn.pgconn
        try:
            pgconn.consume_input()
        except psycopg.OperationalError:
            busy = False  # the connection is gone: the waiter finds out from get_result()
        else:
            busy = pgconn.is_busy()
        waiter = self._waiter
        if waiter is not None and not busy and not waiter.done():
            self._waiter = None
            waiter.set_result(None)
        elif waiter is None and pgconn.status != pq.ConnStatus.OK:
            asyncio.get_running_loop().remove_reader(self._fd)  # lost while idle: stop watching
            self._fd = -1

    async def _connect(self) -> None:
        if time.monotonic() < self._down_until:
            raise ProbeFailed("reconnecting later")
        try:
            async with asyncio.timeout(TIMEOUT_S):
                conn = await connect_dedicated(
                    self.conninfo, "gridrisk-outbox-probe", statement_timeout_ms=int(TIMEOUT_S * 1000) // 2
                )
                try:
                    await conn.execute(f"PREPARE {STATEMENT.decode()} AS {sql('outbox_newest')}")
                except BaseException:
                    await conn.close()
                    raise
        except (psycopg.Error, OSError, TimeoutError) as exc:
            self.failures += 1
            self._down_until = time.monotonic() + RETRY_S
            text = str(exc).strip()
            raise ProbeFailed(text.splitlines()[0] if text else "cannot connect") from exc
        conn.pgconn.nonblocking = 1
        self._conn, self._fd = conn, conn.pgconn.socket
        asyncio.get_running_loop().add_reader(self._fd, self._readable)

    async def aclose(self, failed: bool = False) -> None:
        """Close the connection (again on a later call unless FAILED holds it off for RETRY_S)."""
        conn, self._conn = self._conn, None
        if self._fd >= 0:
            try:
                asyncio.get_running_loop().remove_reader(self._fd)
            except (RuntimeError, ValueError, OSError):
                pass
            self._fd = -1
        if failed:
            self.failures += 1
            self._down_until = time.monotonic() + RETRY_S
            log.info("outbox probe failed; reads take the usual path for %.0f s", RETRY_S)
        if conn is not None:
            await conn.close()
