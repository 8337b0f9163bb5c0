"""Admission in a crisis: heavy reads take turns in a few slots, and callers are rate limited per key.

Lookups (cells/at, nearest shelter, work-order updates, check-ins) must keep their speed while command
centres download whole layers. So every request that matches HEAVY takes one of `heavy_slots` slots
per worker before it reaches the database, waits in a bounded queue when they are all taken, and is
told to come back (503 + Retry-After) when the queue is full or its wait runs out. The rest of the
pool is therefore always free for the cheap requests. Heavy routes build their body before they
answer (see api/spool.py), so a slot, like a connection, is released when the response starts, not
when a slow reader has finished reading it.

Writes and heavy reads are also rate limited per API key (per client address without one) with the
`limits` library's moving window, answered with 429 + Retry-After.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from dataclasses import dataclass

import orjson
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gridrisk.errors import PROBLEM_BASE, PROBLEM_JSON
from gridrisk.settings import Settings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# (methods, path pattern) of the expensive requests: whole layers, big pages, exports, imports.
HEAVY: tuple[tuple[frozenset[str], re.Pattern[str]], ...] = tuple(
    (frozenset(methods.split()), re.compile(pattern))
    for methods, pattern in (
        ("GET", r"/risk-map/(?!thresholds$)[^/]+"),
        ("GET", r"/ogc/collections"),
        ("GET", r"/ogc/collections/[^/]+/items"),
        ("GET", r"/layers/[^/]+/cells"),
        ("GET", r"/shelters/coverage(\.geojson)?"),
        ("GET", r"/warnings/[^/]+/work-orders\.geojson"),
        ("GET", r"/warnings/[^/]+/map\.png"),
        ("POST", r"/[a-z-]+/import"),
        ("POST", r"/layers/[^/]+/import"),
    )
)


def is_heavy(method: str, path: str) -> bool:
    """Whether METHOD PATH is one of the expensive requests that take a heavy slot."""
    return any(method in methods and pattern.fullmatch(path) for methods, pattern in HEAVY)


def caller(scope: Scope) -> str:
    """Who to count a request against: a digest of its API key, else the client's address."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return "key:" + hashlib.sha256(value).hexdigest()[:24]
    client = scope.get("client")
    return "addr:" + (client[0] if client else "unknown")


@dataclass
class HeavyGate:
    """At most `slots` heavy requests at a time, at most `queue` waiting, none waiting past `wait_s`."""

    slots: int
    queue: int
    wait_s: float

    def __post_init__(self) -> None:
        self._free = asyncio.Semaphore(self.slots)
        self.waiting = 0

    async def enter(self) -> bool:
        """Take a slot; False when the queue is full or the wait ran out (the caller answers 503)."""
        if self._free.locked() and self.waiting >= self.queue:
            return False
        self.waiting += 1
        try:
            await asyncio.wait_for(self._free.acquire(), self.wait_s)
            return True
        except TimeoutError:
            return False
        finally:
            self.waiting -= 1

    def leave(self) -> None:
        self._free.release()

    @property
    def busy(self) -> int:
        return self.slots - self._free._value  # noqa: SLF001  (asyncio keeps the count private)


class Admission:
    """Pure ASGI middleware: rate limits, then the heavy gate; everything else passes straight on."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.gate = HeavyGate(settings.heavy_slots, settings.heavy_queue, settings.heavy_wait_s)
        self.retry_after_s = max(1, math.ceil(settings.heavy_wait_s / 2))
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.write_limit = _limit(settings.rate_limit_writes)
        self.heavy_limit = _limit(settings.rate_limit_heavy)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        heavy = is_heavy(method, path)
        limit = self.heavy_limit if heavy else self.write_limit if method in WRITE_METHODS else None
        if limit is not None:
            who = caller(scope)
            if not self.limiter.hit(limit, "heavy" if heavy else "write", who):
                reset, _ = self.limiter.get_window_stats(limit, "heavy" if heavy else "write", who)
                retry = max(1, math.ceil(reset - time.time()))
                detail = f"Too many requests from this caller (limit {limit}); retry in {retry} s."
                await _problem(send, 429, "Too many requests", detail, path, retry)
                return
        if not heavy:
            await self.app(scope, receive, send)
            return
        if not await self.gate.enter():
            detail = "The service is busy with heavy reads; lookups are unaffected. Retry shortly."
            await _problem(send, 503, "Service unavailable", detail, path, self.retry_after_s)
            return
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self.gate.leave()

        async def send_and_release(message: Message) -> None:
            # Heavy routes build their body before answering: once the response starts, the
            # database work is done, and a slow reader must not keep the slot.
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self.app(scope, receive, send_and_release)
        finally:
            release()


def _limit(text: str) -> RateLimitItem | None:
    return parse(text) if text.strip() else None


async def _problem(send: Send, status: int, title: str, detail: str, path: str, retry_after: int) -> None:
    kind = title.lower().replace(" ", "-")
    body = orjson.dumps(
        {"type": PROBLEM_BASE + kind, "title": title, "status": status, "detail": detail, "instance": path}
    )
    headers = [
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
