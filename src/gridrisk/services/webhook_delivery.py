"""Send webhook deliveries (Standard Webhooks v1): in order per endpoint, at least once, never in the way.

Each API process runs one `WebhookDispatcher` (made and stopped in the lifespan). It wakes on every
outbox read and every POLL_S, leases one endpoint with deliveries due (`webhook_lease.sql`: one
worker per endpoint across processes, for LEASE_S), and sends its oldest pending deliveries one
after another, each signed over `id.timestamp.body` with the endpoint's secret; the webhook id is
the delivery's, the same on every retry. A 2xx delivers it; 410 Gone disables the endpoint; any
other answer or a network error retries it later (exponential backoff with jitter, or the answer's
Retry-After), and stops the endpoint's queue there so that no later event overtakes it. After
MAX_ATTEMPTS it is given up (`failed`; an admin can redeliver it). No database connection is held
while a receiver answers: a slow receiver slows its own queue, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool
from standardwebhooks import Webhook

from gridrisk.db.sql_files import sql
from gridrisk.events.outbox import Batch

log = logging.getLogger("gridrisk.webhooks")

POLL_S = 1.0
LEASE_S = 60.0
BATCH = 50
MAX_ATTEMPTS = 12  # about a day of retries: 5 s × 2^n, capped at 1 h, with jitter
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 3600.0


def backoff_s(attempts: int) -> float:
    """Seconds before retry number ATTEMPTS + 1: doubling from 5 s, at most an hour, ±50% jitter."""
    return min(BACKOFF_BASE_S * 2**attempts, BACKOFF_MAX_S) * (0.5 + random.random())  # noqa: S311


def retry_after_s(value: str | None) -> float | None:
    """A Retry-After header (seconds or an HTTP date) in seconds, or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


def message_id(delivery_id: int) -> str:
    return f"msg_{delivery_id}"


def body_of(row: dict[str, Any]) -> bytes:
    """The delivery's JSON body: {type, timestamp, data} as Standard Webhooks suggests."""
    return orjson.dumps({"type": row["kind"], "timestamp": row["event_at"], "data": row["payload"]})


class WebhookDispatcher:
    """One per process: leases endpoints and sends their deliveries (see the module's docstring)."""

    def __init__(self, pool: AsyncConnectionPool, *, timeout_s: float = 10.0, poll_s: float = POLL_S) -> None:
        self.pool = pool
        self.timeout_s = timeout_s
        self.poll_s = poll_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None
        self._closing = False

    def wake(self, *_: Any) -> None:
        """Look for due deliveries now."""
        self._wake.set()

    def on_outbox(self, batch: Batch) -> None:
        """An outbox read: deliveries are written with their events, so only one with events (or a
        reset, which may hide some) can have made any due. Most reads find nothing (every lookup
        asks for one) and must not cost a query here."""
        if batch.events or batch.reset:
            self._wake.set()

    def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="gridrisk-webhooks")

    async def aclose(self) -> None:
        self._closing = True  # the loop's own stop sign: a cancellation can be lost in a race
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while not self._closing:
            try:
                while not self._closing and await self._one_endpoint():
                    pass
            except (psycopg.Error, OSError) as exc:  # the database away: try again on the next round
                log.warning("webhook delivery paused: %s", str(exc).strip().splitlines()[0])
            # asyncio.timeout, not wait_for: on 3.11, wait_for can swallow a cancellation that arrives
            # as the wake-up does (the process would never stop).
            try:
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def _one_endpoint(self) -> bool:
        """Lease one endpoint with deliveries due and send them; False when there is none."""
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql("webhook_lease"), {"lease_s": LEASE_S})
            endpoint = await cur.fetchone()
            if endpoint is None:
                return False
            cur = await conn.execute(sql("webhook_due"), {"endpoint_id": endpoint["id"], "limit": BATCH})
            rows = await cur.fetchall()
        gone = None
        try:
            signer = Webhook(endpoint["secret"])
            deadline = asyncio.get_running_loop().time() + LEASE_S * 0.8
            for row in rows:
                if not row["due"] or asyncio.get_running_loop().time() > deadline:
                    break
                outcome = await self._send(endpoint["url"], signer, row)
                async with self.pool.connection() as conn:
                    await conn.execute(sql("webhook_result"), {"id": row["id"], **outcome})
                if outcome["status"] == "disabled":
                    gone = f"the receiver answered 410 Gone ({datetime.now(UTC).isoformat()})"
                if outcome["status"] != "delivered":
                    break  # in order: nothing later goes before this one
        finally:
            async with self.pool.connection() as conn:
                await conn.execute(sql("webhook_release"), {"endpoint_id": endpoint["id"], "gone": gone})
        return True

    async def _send(self, url: str, signer: Webhook, row: dict[str, Any]) -> dict[str, Any]:
        assert self._client is not None
        msg_id = message_id(row["id"])
        now = datetime.now(UTC)
        body = body_of(row)
        headers = {
            "content-type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signer.sign(msg_id, now, body.decode()),
            "user-agent": "gridrisk-webhooks/1",
        }
        attempts = row["attempts"] + 1
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return self._retry(attempts, None, f"{type(exc).__name__}: {exc}"[:500], None)
        if 200 <= response.status_code < 300:
            return {
                "status": "delivered",
                "http_status": response.status_code,
                "error": None,
                "next_at": None,
            }
        if response.status_code == 410:
            return {"status": "disabled", "http_status": 410, "error": "410 Gone", "next_at": None}
        wait = retry_after_s(response.headers.get("retry-after"))
        return self._retry(attempts, response.status_code, response.text[:500] or None, wait)

    @staticmethod
    def _retry(
        attempts: int, http_status: int | None, error: str | None, wait: float | None
    ) -> dict[str, Any]:
        if attempts >= MAX_ATTEMPTS:
            return {"status": "failed", "http_status": http_status, "error": error, "next_at": None}
        delay = wait if wait is not None else backoff_s(attempts - 1)
        next_at = datetime.now(UTC) + timedelta(seconds=delay)
        return {"status": "pending", "http_status": http_status, "error": error, "next_at": next_at}
