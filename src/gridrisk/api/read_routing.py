"""Where a request reads from when there are replicas, and the WAL position a write leaves behind.

A plain read (GET or HEAD, outside the live stream and health) is given a pool by the replica set
(db/replicas.py): a replica that has replayed the caller's last write — named by the `Gridrisk-LSN`
header or the cookie a write sets — or the primary. Its answer says which (`Gridrisk-Served-By`).
If the replica fails under it (connection lost, no connection in time) the read is run again on the
primary, so a replica going away costs a retry, never a 5xx. A successful write's answer carries the
primary's WAL position after its commit, as the header and as a cookie that browsers send back.
"""

from __future__ import annotations

import psycopg
import psycopg_pool

from gridrisk.db.replicas import (
    COOKIE,
    COOKIE_MAX_AGE_S,
    HEADER,
    SERVED_BY,
    ReplicaSet,
    format_lsn,
    parse_lsn,
)

SAFE = {"GET", "HEAD"}
# Not routed: the live stream follows the primary's outbox (a replica cannot LISTEN), health checks
# the primary, and lookups and tiles come from this process's caches, which the primary's outbox
# keeps exact (a replica behind it could put an old tile back into the cache).
PRIMARY_ONLY = ("/events", "/health", "/livez", "/cells/at", "/tiles/")
_HEADER = HEADER.lower().encode()


def _token(scope) -> int | None:
    """The WAL position the caller asks to see (header first, then cookie); the later of both."""
    found: list[int] = []
    for name, value in scope.get("headers", ()):
        if name == _HEADER:
            lsn = parse_lsn(value.decode("latin-1"))
            if lsn is not None:
                found.append(lsn)
        elif name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == COOKIE:
                    lsn = parse_lsn(val)
                    if lsn is not None:
                        found.append(lsn)
    return max(found) if found else None


class ReadRouting:
    """ASGI middleware; a no-op unless the app's lifespan made a replica set (app.state.replicas)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        replicas: ReplicaSet | None = (
            getattr(scope.get("app").state, "replicas", None) if scope.get("app") else None
        )
        if scope["type"] != "http" or replicas is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] in SAFE:
            if scope["path"].startswith(PRIMARY_ONLY):
                await self.app(scope, receive, send)
            else:
                await self._read(replicas, scope, receive, send)
        else:
            await self._write(replicas, scope, receive, send)

    async def _read(self, replicas: ReplicaSet, scope, receive, send) -> None:
        pool, served = await replicas.pool_for(_token(scope))
        state = scope.setdefault("state", {})
        state["read_pool"] = pool
        on_replica = pool is not replicas.primary
        failed = False
        received: list[dict] = []

        async def recording_receive():
            message = await receive()
            received.append(message)
            return message

        async def routed_send(message) -> None:
            nonlocal failed
            if message["type"] == "http.response.start":
                if on_replica and message["status"] == 503 and state.get("db_unreachable"):
                    failed = True  # dropped: the read runs again on the primary
                    return
                message = {
                    **message,
                    "headers": [*message.get("headers", ()), (SERVED_BY.encode(), served.encode())],
                }
            elif failed:
                return
            await send(message)

        await self.app(scope, recording_receive, routed_send)
        if not failed:
            return
        replicas.mark_down(pool, "a read on it failed")
        replicas.primary_reads += 1
        state["read_pool"] = replicas.primary
        state.pop("db_unreachable", None)
        served = "primary (retried)"
        on_replica = failed = False
        replay = list(received)

        async def replaying_receive():
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replaying_receive, routed_send)

    async def _write(self, replicas: ReplicaSet, scope, receive, send) -> None:
        async def stamped_send(message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                try:
                    lsn = format_lsn(await replicas.fresh_lsn())
                except (psycopg.Error, psycopg_pool.PoolTimeout, OSError):  # no token this time
                    lsn = None
                if lsn is not None:
                    cookie = f"{COOKIE}={lsn}; Path=/; Max-Age={COOKIE_MAX_AGE_S}; SameSite=Lax; HttpOnly"
                    message = {
                        **message,
                        "headers": [
                            *message.get("headers", ()),
                            (HEADER.encode(), lsn.encode()),
                            (b"set-cookie", cookie.encode()),
                        ],
                    }
            await send(message)

        await self.app(scope, receive, stamped_send)
