"""Reads on a streaming replica of the test cluster, started here (scripts/pgcluster.sh replica-start):
a write then a read carrying its WAL position always sees the write, however far the replica is
behind; reads without one go to the replica; a replica that stops or lags past the bound leaves the
rotation with no 5xx, and comes back when it is well again."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from conftest import bearer
from live import free_port, live_server

from gridrisk.db.replicas import parse_lsn

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "pgcluster.sh"
INSIDE = (118.797, 32.060)  # 玄武, inside the small test city


def _cluster(command: str, primary_port: int, replica_port: int) -> None:
    env = {**os.environ, "GRIDRISK_PG_PORT": str(primary_port)}
    subprocess.run(
        ["bash", str(SCRIPT), command, str(replica_port)], check=True, env=env, capture_output=True
    )


@pytest.fixture(scope="module")
def replica_port():
    """A hot standby of the whole test cluster on a free port, dropped (with its slot) at the end."""
    primary_port = urlsplit(os.environ["GRIDRISK_DATABASE_URL"]).port or 5432
    port = free_port()
    _cluster("replica-start", primary_port, port)
    try:
        yield primary_port, port
    finally:
        _cluster("replica-drop", primary_port, port)


def _on_replica(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}@{parts.hostname}:{port}"))


def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _connectable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1 FROM risk_sources LIMIT 1")
        return True
    except psycopg.Error:
        return False


def _source(code: str, dx: float) -> dict:
    return {
        "code": code,
        "name": f"测试 {code}",
        "category": "gas",
        "assessment": {"method": "LEC", "L": 3, "E": 6, "C": 7},
        "geometry": {"type": "Point", "coordinates": [INSIDE[0] + dx, INSIDE[1]]},
    }


def _health(api) -> dict:
    return api.get("/health").json()["replication"]["replicas"][0]


def test_a_read_with_the_writes_token_always_sees_the_write(replica_port, city_db_url, city_keys):
    _, port = replica_port
    replica_url = _on_replica(city_db_url, port)
    _wait(lambda: _connectable(replica_url))  # the test's database reached the replica
    operator = bearer(city_keys["operator"])
    served: dict[str, int] = {}
    stale_for_others = 0
    with (
        psycopg.connect(replica_url, autocommit=True) as standby,
        live_server(city_db_url, replica_urls=[replica_url], replica_wait_s=0.2) as base,
        httpx.Client(base_url=base, timeout=10) as writer,
        httpx.Client(base_url=base, timeout=10) as other,
    ):
        _wait(lambda: _health(writer)["in_rotation"])
        for i in range(40):
            paused = i % 2 == 1  # the replica's replay stopped on purpose: it falls behind
            standby.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")
            r = writer.post("/risk-sources", json=_source(f"REP-{i}", i * 1e-4), headers=operator)
            assert r.status_code == 201, r.text
            token = r.headers["gridrisk-lsn"]
            assert parse_lsn(token) is not None and "gridrisk_lsn=" in r.headers["set-cookie"]
            sid = r.json()["id"]
            # Half the reads bring the token as a header, half only as the cookie the write set.
            headers = {"Gridrisk-LSN": token} if i % 4 < 2 else {}
            got = writer.get(f"/risk-sources/{sid}", headers=headers)
            assert got.status_code == 200, (i, paused, got.headers.get("gridrisk-served-by"), got.text)
            assert got.json()["properties"]["code"] == f"REP-{i}"
            who = got.headers["gridrisk-served-by"].split(" ")[0]
            served[who] = served.get(who, 0) + 1
            if paused:
                # Without the token (another client), the replica answers as it is: behind.
                seen = other.get(f"/risk-sources/{sid}")
                assert seen.headers["gridrisk-served-by"].startswith("replica")
                stale_for_others += seen.status_code == 404
        standby.execute("SELECT pg_wal_replay_resume()")
    # While replay ran, the replica served the writer's reads; while it stood, the primary did.
    assert served.get("replica", 0) >= 10 and served.get("primary", 0) >= 10, served
    assert stale_for_others >= 10  # the token is what made the difference
    print(f"reads after a write, by server: {served}; stale reads without the token: {stale_for_others}/20")


def test_a_replica_that_stops_or_lags_leaves_the_rotation_with_no_5xx(replica_port, city_db_url):
    primary_port, port = replica_port
    replica_url = _on_replica(city_db_url, port)
    _wait(lambda: _connectable(replica_url))
    statuses: dict[int, int] = {}
    servers: list[str] = []
    stop = threading.Event()

    with live_server(city_db_url, replica_urls=[replica_url], replica_max_lag_s=0.5) as base:

        def load() -> None:
            with httpx.Client(base_url=base, timeout=20) as c:
                while not stop.is_set():
                    r = c.get("/risk-sources", params={"limit": 5})
                    statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                    servers.append(r.headers.get("gridrisk-served-by", ""))

        with httpx.Client(base_url=base, timeout=10) as api:
            _wait(lambda: _health(api)["in_rotation"])
            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            try:
                time.sleep(1.0)
                _cluster("replica-stop", primary_port, port)  # mid-load
                _wait(lambda: not _health(api)["up"])
                stopped_at = len(servers)
                time.sleep(1.0)
                assert all(s == "primary" or "retried" in s for s in servers[stopped_at + 8 :])
                _cluster("replica-start", primary_port, port)
                _wait(lambda: _health(api)["in_rotation"])
                back_at = len(servers)
                time.sleep(0.5)
                assert any(s.startswith("replica") for s in servers[back_at:])

                # Lag past the bound: replay paused while the primary writes.
                with (
                    psycopg.connect(replica_url, autocommit=True) as standby,
                    psycopg.connect(city_db_url, autocommit=True) as primary,
                ):
                    primary.execute("CREATE TABLE wal_ticks (at timestamptz)")
                    standby.execute("SELECT pg_wal_replay_pause()")
                    deadline = time.monotonic() + 10
                    while _health(api)["in_rotation"] and time.monotonic() < deadline:
                        primary.execute("INSERT INTO wal_ticks VALUES (now())")
                        time.sleep(0.05)
                    health = _health(api)
                    assert not health["in_rotation"] and health["up"] and health["lag_s"] > 0.5, health
                    lagging_at = len(servers)
                    time.sleep(0.5)
                    assert all(s == "primary" for s in servers[lagging_at + 8 :])
                    standby.execute("SELECT pg_wal_replay_resume()")
                    _wait(lambda: _health(api)["in_rotation"])
            finally:
                stop.set()
                for t in threads:
                    t.join()
    assert set(statuses) == {200}, statuses  # no 5xx, whatever the replica did
    assert sum(s.startswith("replica") for s in servers) > 20
    retried = sum("retried" in s for s in servers)
    print(f"{sum(statuses.values())} reads, all 200; retried on the primary: {retried}")


def test_tiles_rendered_on_a_replica_are_never_older_than_an_acknowledged_write(
    replica_port, city_db_url, city_keys
):
    """A red source turns its cell red in the very next tile, whether the replica is replaying
    (the tile is rendered there) or stopped behind (the render waits, then goes to the primary);
    the cache keeps exactly what the primary's outbox says is current."""
    from test_tiles import blue_cells, decode, tile_of, url

    _, port = replica_port
    replica_url = _on_replica(city_db_url, port)
    _wait(lambda: _connectable(replica_url))
    operator = bearer(city_keys["operator"])
    cells = blue_cells(city_db_url)[:12:2]  # six blue safety cells
    with (
        psycopg.connect(replica_url, autocommit=True) as standby,
        live_server(city_db_url, replica_urls=[replica_url], replica_wait_s=0.2) as base,
        httpx.Client(base_url=base, timeout=10) as api,
    ):
        _wait(lambda: _health(api)["in_rotation"])
        for cell in cells:  # warm the cache: the tiles are cached before the writes
            assert api.get(url("safety", tile_of(cell["lon"], cell["lat"]))).status_code == 200
        before = _health(api)["reads"]
        for i, cell in enumerate(cells):
            paused = i % 2 == 1
            standby.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")
            body = {
                **_source(f"REP-T{i}", 0.0),
                "assessment": {"method": "direct", "level": "red", "reason": "测试"},
            }
            body["geometry"]["coordinates"] = [cell["lon"], cell["lat"]]
            r = api.post("/risk-sources", json=body, headers=operator)
            assert r.status_code == 201, r.text
            tile = api.get(url("safety", tile_of(cell["lon"], cell["lat"])))
            assert tile.status_code == 200 and tile.headers["x-tile-cache"] == "miss"
            assert decode(tile.content, "safety")[cell["id"]]["properties"]["colour"] == "red", (i, paused)
        standby.execute("SELECT pg_wal_replay_resume()")
        assert _health(api)["reads"] > before  # the replica rendered some of them


def test_wal_positions_and_lag_arithmetic():
    """Tokens parse as PostgreSQL writes them (anything else is ignored, never an error), and lag
    is how long ago the primary was where the replica is."""
    from gridrisk.api.read_routing import _token
    from gridrisk.db.replicas import ReplicaSet, format_lsn

    assert parse_lsn("16/B374D848") == (0x16 << 32) | 0xB374D848
    assert format_lsn(parse_lsn("16/B374D848")) == "16/B374D848"
    for bad in ("", "16", "16/", "/B3", "zz/00", "1/100000000", "0/1; DROP TABLE x", "9" * 30, None):
        assert parse_lsn(bad) is None, bad
    scope = {"headers": [(b"gridrisk-lsn", b"0/10"), (b"cookie", b"a=b; gridrisk_lsn=0/20; c=d")]}
    assert _token(scope) == 0x20  # the later of header and cookie
    assert _token({"headers": [(b"gridrisk-lsn", b"nonsense")]}) is None

    rs = ReplicaSet(primary=None, replicas=[], max_lag_s=2.0, wait_s=0.1)  # type: ignore[arg-type]
    rs._history.extend([(100.0, 10), (101.0, 20), (102.5, 30)])
    assert rs._lag(30, now=103.0) == 0.0  # replayed all the primary had at the last sample
    assert rs._lag(25, now=103.0) == pytest.approx(0.5)  # the primary passed 25 at 102.5
    assert rs._lag(15, now=103.0) == pytest.approx(2.0)
    assert rs._lag(None, now=103.0) is None
