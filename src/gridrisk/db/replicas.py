"""Plain reads spread over PostgreSQL streaming replicas, with read-your-writes kept by WAL position.

A write's response carries the primary's WAL position after its commit (the `Gridrisk-LSN` header
and a short-lived cookie); a read that brings it back is served by a replica only once that replica
has replayed past it, else (after a bounded wait) by the primary. A read without one goes to any
replica within GRIDRISK_REPLICA_MAX_LAG_S of the primary. A monitor samples the primary's position
and each replica's replay position every SAMPLE_S; a replica that stops answering or falls behind
the bound leaves the rotation until it catches up.

Lag is measured in time, not bytes: the primary's position is remembered with the time it was
sampled, and a replica's lag is how long ago the primary was where the replica is now (0 when it has
replayed everything the primary had written at the last sample). An idle primary therefore shows no
lag, and a busy one shows the real delay a reader would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import AsyncConnectionPool

from gridrisk.db.pool import make_pool
from gridrisk.settings import Settings

log = logging.getLogger("gridrisk.replicas")

HEADER = "Gridrisk-LSN"
COOKIE = "gridrisk_lsn"
COOKIE_MAX_AGE_S = 300
SERVED_BY = "Gridrisk-Served-By"
SAMPLE_S = 0.1
# How long the primary's positions are remembered (a replica further behind has lag ≥ this).
HISTORY_S = 120.0
# How often a read that waits for a replica asks it again.
POLL_S = 0.005
PROBE_TIMEOUT_S = 1.0


def parse_lsn(text: str | None) -> int | None:
    """A WAL position as PostgreSQL writes it ("16/B374D848") as one integer; None if it is not one."""
    if not text or len(text) > 20:
        return None
    hi, sep, lo = text.strip().partition("/")
    try:
        value = (int(hi, 16) << 32) | int(lo, 16)
    except ValueError:
        return None
    return value if sep and 0 <= int(lo, 16) < (1 << 32) else None


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def _name(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


@dataclass
class Replica:
    """One streaming replica: its pool, and what the monitor last saw of it."""

    name: str
    pool: AsyncConnectionPool
    up: bool = False
    replay: int | None = None  # the WAL position it has replayed, at the last sample
    lag_s: float | None = None
    in_rotation: bool = False
    error: str | None = None
    reads: int = 0

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "up": self.up,
            "in_rotation": self.in_rotation,
            "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
            "replay_lsn": None if self.replay is None else format_lsn(self.replay),
            "reads": self.reads,
            "error": self.error,
        }


@dataclass
class ReplicaSet:
    """The primary's pool and the replicas' pools; picks where each plain read goes."""

    primary: AsyncConnectionPool
    replicas: list[Replica]
    max_lag_s: float
    wait_s: float
    _history: deque = field(default_factory=deque)  # (monotonic time, primary LSN), oldest first
    _monitor: asyncio.Task | None = None
    _turn: itertools.count = field(default_factory=itertools.count)
    _lsn_next: asyncio.Future | None = None  # the next shared position query, not started yet
    _lsn_pump: asyncio.Task | None = None
    primary_reads: int = 0

    @classmethod
    def from_settings(cls, settings: Settings, primary: AsyncConnectionPool) -> ReplicaSet:
        replicas = [
            Replica(
                _name(url),
                make_pool(
                    settings, url=url, name=f"gridrisk-replica-{i}", max_size=settings.replica_pool_max_size
                ),
            )
            for i, url in enumerate(settings.replica_urls)
        ]
        return cls(primary, replicas, settings.replica_max_lag_s, settings.replica_wait_s)

    async def start(self) -> None:
        for r in self.replicas:
            await r.pool.open(wait=False)
        self._monitor = asyncio.get_running_loop().create_task(self._watch(), name="gridrisk-replicas")

    async def aclose(self) -> None:
        for task in (self._monitor, self._lsn_pump):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for r in self.replicas:
            await r.pool.close()

    # -- where a read goes ----------------------------------------------------------------------

    async def pool_for(self, token: int | None) -> tuple[AsyncConnectionPool, str]:
        """The pool for a plain read (and who serves it): a replica in rotation that has replayed
        TOKEN (waiting up to wait_s for one to get there), else the primary."""
        live = [r for r in self.replicas if r.in_rotation]
        if live:
            start = next(self._turn) % len(live)
            live = live[start:] + live[:start]
            if token is None:
                return self._serve(live[0])
            for r in live:
                if r.replay is not None and r.replay >= token:
                    return self._serve(r)
            deadline = time.monotonic() + self.wait_s
            while True:
                for r in live:
                    replay = await self._replay_of(r)
                    if replay is not None and replay >= token:
                        return self._serve(r)
                if time.monotonic() + POLL_S > deadline:
                    break
                await asyncio.sleep(POLL_S)
        self.primary_reads += 1
        return self.primary, "primary"

    def _serve(self, r: Replica) -> tuple[AsyncConnectionPool, str]:
        r.reads += 1
        return r.pool, f"replica {r.name}"

    def mark_down(self, pool: AsyncConnectionPool, reason: str) -> None:
        """A read on POOL's replica failed: out of rotation until the monitor sees it well again."""
        for r in self.replicas:
            if r.pool is pool and r.in_rotation:
                r.in_rotation, r.up, r.error = False, False, reason
                log.warning("replica %s out of rotation: %s", r.name, reason)

    async def fresh_lsn(self) -> int:
        """The primary's WAL position from a query that started after this call, shared by every
        caller that came while the previous one ran (a burst of cold tiles costs one query)."""
        fut = self._lsn_next
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = self._lsn_next = loop.create_future()
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            if self._lsn_pump is None:
                self._lsn_pump = loop.create_task(self._pump_lsn(), name="gridrisk-primary-lsn")
        return await asyncio.shield(fut)

    async def _pump_lsn(self) -> None:
        try:
            while self._lsn_next is not None:
                # Callers from now on wait for the next query: this one may have begun before them.
                fut, self._lsn_next = self._lsn_next, None
                try:
                    fut.set_result(await self.primary_lsn())
                except Exception as exc:  # the waiters raise it
                    fut.set_exception(exc)
        finally:
            self._lsn_pump = None

    async def primary_lsn(self) -> int:
        """The primary's WAL position now (after every commit acknowledged so far)."""
        async with self.primary.connection() as conn:
            cur = await conn.execute("SELECT pg_current_wal_lsn()::text AS lsn")
            return parse_lsn((await cur.fetchone())["lsn"])  # type: ignore[return-value]

    # -- the monitor ----------------------------------------------------------------------------

    async def _replay_of(self, r: Replica) -> int | None:
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S), r.pool.connection(timeout=PROBE_TIMEOUT_S) as conn:
                cur = await conn.execute(
                    "SELECT pg_last_wal_replay_lsn()::text AS lsn, pg_is_in_recovery() AS standby"
                )
                row = await cur.fetchone()
        except (psycopg.Error, OSError, TimeoutError) as exc:
            r.up, r.in_rotation = False, False
            r.error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return None
        if not row["standby"]:
            # A promoted replica is a primary of its own: reading from it could miss our writes.
            r.up, r.in_rotation, r.error = False, False, "not a standby (promoted?)"
            return None
        r.replay = parse_lsn(row["lsn"])
        r.up = True
        r.error = None
        return r.replay

    def _lag(self, replay: int | None, now: float) -> float | None:
        """How long ago the primary was where REPLAY is (0: at or past the last sample)."""
        if replay is None or not self._history:
            return None
        if replay >= self._history[-1][1]:
            return 0.0
        for t, lsn in self._history:  # the first sample the replica has not reached
            if lsn > replay:
                return now - t
        return 0.0

    async def _sample(self) -> None:
        now = time.monotonic()
        try:
            lsn = await self.primary_lsn()
        except (psycopg.Error, OSError) as exc:
            log.debug("replica monitor: primary unreachable (%s)", exc)
        else:
            if not self._history or lsn != self._history[-1][1]:
                self._history.append((now, lsn))
            while self._history and now - self._history[0][0] > HISTORY_S and len(self._history) > 1:
                self._history.popleft()
        for r in self.replicas:
            replay = await self._replay_of(r)
            r.lag_s = self._lag(replay, now) if r.up else None
            was = r.in_rotation
            r.in_rotation = r.up and r.lag_s is not None and r.lag_s <= self.max_lag_s
            if was != r.in_rotation:
                log.info(
                    "replica %s %s rotation (lag %s s%s)",
                    r.name,
                    "back in" if r.in_rotation else "out of",
                    None if r.lag_s is None else f"{r.lag_s:.2f}",
                    f"; {r.error}" if r.error else "",
                )

    async def _watch(self) -> None:
        while True:
            try:
                await self._sample()
            except Exception:  # the monitor must outlive any surprise
                log.exception("replica monitor failed; sampling again")
            await asyncio.sleep(SAMPLE_S)

    def state(self) -> dict[str, Any]:
        return {
            "max_lag_s": self.max_lag_s,
            "primary_reads": self.primary_reads,
            "replicas": [r.state() for r in self.replicas],
        }
