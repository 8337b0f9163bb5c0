"""Build a large response before sending it, so no slow reader holds a database connection.

A whole-layer map is 13 MB; a phone on a bad network may take minutes to read it. Streaming straight
from a database cursor would keep a pooled connection (and a transaction) open for all that time, and
fifteen such readers would starve everyone else. Instead the rows are copied into a spool (memory up
to `spool_memory_mb`, a temporary file beyond) at the database's pace, the connection goes back to
the pool, and the spool is then sent at the reader's pace.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

from psycopg_pool import AsyncConnectionPool
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from gridrisk.settings import Settings

CHUNK = 256 * 1024
ROWS_PER_FETCH = 2000


async def spool_json_array(
    pool: AsyncConnectionPool,
    settings: Settings,
    query: str,
    params: dict[str, Any],
    *,
    head: bytes,
    tail: bytes,
    column: str = "feature",
) -> tuple[BinaryIO, int]:
    """Run QUERY and write HEAD, its COLUMN texts joined by commas, TAIL into a spool; (file, size)."""
    spool = tempfile.SpooledTemporaryFile(max_size=settings.spool_memory_mb * 2**20)  # noqa: SIM115
    try:
        spool.write(head)
        async with pool.connection() as conn, conn.transaction():
            # A server-side cursor: the rows arrive in batches, never all in Python at once.
            cur = conn.cursor(name="spool")
            cur.itersize = ROWS_PER_FETCH
            await cur.execute(query, params)
            first = True
            async for row in cur:
                if not first:
                    spool.write(b",")
                spool.write(row[column].encode())
                first = False
        spool.write(tail)
        size = spool.tell()
        spool.seek(0)
        return spool, size
    except BaseException:
        spool.close()
        raise


def spool_response(spool: BinaryIO, size: int, media_type: str) -> StreamingResponse:
    """Send a spool at the reader's pace with its length, and close it when done (or abandoned)."""

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                # A spilled spool reads from disk: off the event loop, in the thread pool.
                on_disk = getattr(spool, "_rolled", True)
                chunk = await run_in_threadpool(spool.read, CHUNK) if on_disk else spool.read(CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            spool.close()

    return StreamingResponse(chunks(), media_type=media_type, headers={"Content-Length": str(size)})
