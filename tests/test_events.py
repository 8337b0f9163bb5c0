"""Live events over SSE on a real server and PostGIS: delivery, resume without gap or duplicate, filters."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time

import httpx
import psycopg
import pytest
from conftest import assert_problem, bearer
from live import live_server
from psycopg_pool import AsyncConnectionPool

from gridrisk.api.routes import events as events_route
from gridrisk.events import hub as live_events
from gridrisk.events import outbox
from gridrisk.events.hub import EventHub, prune_events
from gridrisk.events.outbox import OutboxReader

GRID_AND_DISTRICT = {"district", "comprehensive", "emergency", "safety"}


@pytest.fixture(autouse=True)
def fast_heartbeat(monkeypatch):
    """Heartbeats every 0.3 s: the streams below live through many of them."""
    monkeypatch.setattr(events_route, "HEARTBEAT_S", 0.3)


@pytest.fixture
def server(city_db_url):
    with live_server(city_db_url) as base:
        yield base


# -- helpers ------------------------------------------------------------------------------------


class Sse:
    """An open /events stream, read by a background task into blocks (events and comments)."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict | None = None) -> None:
        self.client, self.url, self.headers = client, url, headers or {}

    async def __aenter__(self) -> Sse:
        self._cm = self.client.stream("GET", self.url, headers=self.headers)
        self.response = await self._cm.__aenter__()
        assert self.response.status_code == 200, (await self.response.aread()).decode()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self.blocks: asyncio.Queue = asyncio.Queue()
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task
        await self._cm.__aexit__(*exc)

    async def _read(self) -> None:
        block: dict = {}
        async for line in self.response.aiter_lines():
            if line == "":
                if block:
                    block["t"] = time.perf_counter()
                    await self.blocks.put(block)
                    block = {}
            elif line.startswith(":"):
                block.setdefault("comments", []).append(line[1:].strip())
            else:
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                block[name] = block[name] + "\n" + value if name == "data" and "data" in block else value
        await self.blocks.put(None)

    async def next(self, within: float = 2.0) -> dict:
        """The next event (comment-only blocks skipped), its data parsed."""
        async with asyncio.timeout(within):
            while True:
                block = await self.blocks.get()
                if block is None:
                    raise EOFError("the stream ended")
                if "event" in block or "data" in block:
                    if "data" in block:
                        block["json"] = json.loads(block["data"])
                    return block

    async def take(self, n: int, within: float = 2.0) -> list[dict]:
        deadline = time.monotonic() + within
        return [await self.next(max(0.01, deadline - time.monotonic())) for _ in range(n)]

    async def quiet(self, seconds: float) -> list[dict]:
        """Events arriving within SECONDS (expected: none)."""
        got = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self.next(seconds))
        return got

    async def comments(self, seconds: float) -> list[str]:
        """Comment lines arriving within SECONDS (keep-alives), events excluded."""
        out: list[str] = []
        deadline = time.monotonic() + seconds
        with contextlib.suppress(TimeoutError):
            while (left := deadline - time.monotonic()) > 0:
                async with asyncio.timeout(left):
                    block = await self.blocks.get()
                assert block is not None, "the stream ended"
                out += block.get("comments", [])
        return out


def blue_points(url: str, district: str, n: int) -> list[tuple[float, float]]:
    """N points inside distinct blue comprehensive cells of DISTRICT."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT c.code, ST_PointOnSurface(c.geom) AS p FROM cells c"
            " JOIN cell_risk r ON r.cell_id = c.id WHERE c.layer = 'comprehensive' AND c.district_code = %s"
            " AND r.colour = 'blue' ORDER BY c.code LIMIT %s) x",
            (district, n),
        ).fetchall()
    assert len(rows) == n
    return [(float(x), float(y)) for x, y in rows]


INSERT = (
    "INSERT INTO risk_sources (code, name, category, geom, method, l, e, c, created_by, updated_by)"
    " VALUES (%s, 'test source', 'gas', ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'LEC', 6, 6, 15, 't', 't')"
    " RETURNING id"
)


def add_source(url: str, code: str, point: tuple[float, float]) -> tuple[int, float]:
    """Insert a red (LEC 540) source at POINT and commit; (its id, the time just after the commit)."""
    with psycopg.connect(url) as conn:
        source_id = conn.execute(INSERT, (code, *point)).fetchone()[0]
        conn.commit()
        return source_id, time.perf_counter()


def events_after(url: str, after: int, kind: str | None = None) -> list[tuple[int, str, dict]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, kind, payload FROM events WHERE id > %s AND (%s::text IS NULL OR kind = %s)"
            " ORDER BY id",
            (after, kind, kind),
        ).fetchall()


# One new red source makes 5 events: its cell in each of the 3 grids and its district turn red
# (4 cell_colour), and the feature itself (1 feature_changed).
PER_SOURCE = 5


def source_cells(url: str, source_id: int) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        return dict(
            conn.execute(
                "SELECT c.layer, c.code FROM source_cells s JOIN cells c ON c.id = s.cell_id"
                " WHERE s.source_id = %s",
                (source_id,),
            ).fetchall()
        )


def as_tuples(events: list[dict]) -> list[tuple[int, str, dict]]:
    return [(int(e["id"]), e["event"], e["json"]) for e in events]


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=httpx.Timeout(10.0))


# -- delivery and resume ------------------------------------------------------------------------


def test_colour_changes_arrive_live_then_resume_by_id_without_gap_or_duplicate(server, city_db_url):
    # Colour events only: each write also emits a feature_changed event (tested below).
    p1 = blue_points(city_db_url, "320102", 2)
    p2 = blue_points(city_db_url, "320104", 1)

    async def run():
        async with client() as http:
            async with Sse(http, server + "/events?kinds=cell_colour") as stream:
                ready = await stream.next()
                assert ready["event"] == "ready" and ready["retry"] == "3000"
                start = int(ready["id"])
                assert ready["json"] == {"last_event_id": start}
                first_id, committed = await asyncio.to_thread(add_source, city_db_url, "EV-1", p1[0])
                got1 = await stream.take(4, within=2.0)
                assert all(e["t"] - committed < 2.0 for e in got1)
                second_id, _ = await asyncio.to_thread(add_source, city_db_url, "EV-2", p2[0])
                got2 = await stream.take(4)
                assert await stream.quiet(0.5) == []
            live = got1 + got2
            assert as_tuples(live) == events_after(
                city_db_url, start, "cell_colour"
            )  # all of them, in commit order
            ids = [int(e["id"]) for e in live]
            assert ids == sorted(ids) and len(set(ids)) == 8
            for got, source_id in ((got1, first_id), (got2, second_id)):
                assert {e["event"] for e in got} == {"cell_colour"}
                assert {e["json"]["layer"]: e["json"]["code"] for e in got} == source_cells(
                    city_db_url, source_id
                )
                assert {(e["json"]["old"], e["json"]["new"]) for e in got} == {("blue", "red")}
                assert {e["json"]["layer"] for e in got} == GRID_AND_DISTRICT

            # Reconnect after the first event: the other seven, once each, then live again.
            async with Sse(
                http, server + "/events?kinds=cell_colour", headers={"Last-Event-ID": live[0]["id"]}
            ) as stream:
                ready = await stream.next()
                assert ready["event"] == "ready" and ready["id"] == live[0]["id"]
                replayed = await stream.take(7)
                assert as_tuples(replayed) == as_tuples(live[1:])
                assert await stream.quiet(0.6) == []
                await asyncio.to_thread(add_source, city_db_url, "EV-3", p1[1])
                expected = events_after(city_db_url, ids[-1], "cell_colour")
                assert expected  # the third source turned at least its comprehensive cell red
                assert as_tuples(await stream.take(len(expected))) == expected
                assert await stream.quiet(0.5) == []

            # The query parameter, for clients that cannot set the header.
            async with Sse(http, f"{server}/events?kinds=cell_colour&last_event_id={ids[3]}") as stream:
                assert (await stream.next())["id"] == str(ids[3])
                rest = events_after(city_db_url, ids[3], "cell_colour")
                assert as_tuples(await stream.take(len(rest))) == rest
                assert await stream.quiet(0.5) == []

    asyncio.run(run())


def test_filters_by_layer_and_kind(server, city_db_url):
    (p,) = blue_points(city_db_url, "320104", 1)

    async def run():
        async with client() as http:
            async with (
                Sse(http, server + "/events?layer=safety") as safety,
                Sse(http, server + "/events?kinds=cell_colour&layer=district") as district,
                Sse(http, server + "/events?kinds=work_order") as orders,
                Sse(http, server + "/events") as everything,
            ):
                for s in (safety, district, orders, everything):
                    assert (await s.next())["event"] == "ready"
                source_id, _ = await asyncio.to_thread(add_source, city_db_url, "EV-F", p)
                cells = source_cells(city_db_url, source_id)
                all_events = await everything.take(4)
                (s_event,) = await safety.take(1)
                (d_event,) = await district.take(1)
                assert s_event["json"]["layer"] == "safety" and s_event["json"]["code"] == cells["safety"]
                assert d_event["json"]["layer"] == "district" and d_event["json"]["code"] == cells["district"]
                assert {s_event["id"], d_event["id"]} <= {e["id"] for e in all_events}
                assert await safety.quiet(0.5) == []
                assert await district.quiet(0.1) == []
                assert await orders.quiet(0.1) == []
            # The filters apply to the replay as well.
            start = int(all_events[0]["id"]) - 1
            async with Sse(http, f"{server}/events?layer=safety", headers={"Last-Event-ID": str(start)}) as s:
                await s.next()
                (replayed,) = await s.take(1)
                assert replayed["id"] == s_event["id"]
                assert await s.quiet(0.5) == []

    asyncio.run(run())


def test_stream_survives_heartbeat_intervals(server, city_db_url):
    (p,) = blue_points(city_db_url, "320102", 1)

    async def run():
        async with client() as http, Sse(http, server + "/events") as stream:
            await stream.next()
            keepalives = await stream.comments(1.5)  # five heartbeat intervals of silence
            assert keepalives.count("keep-alive") >= 3
            await asyncio.to_thread(add_source, city_db_url, "EV-H", p)
            assert len(await stream.take(4)) == 4

    asyncio.run(run())


def test_replay_and_live_meet_exactly_under_concurrent_writes(server, city_db_url):
    """Clients resuming while sources are being written still see every event exactly once."""
    points = blue_points(city_db_url, "320102", 8) + blue_points(city_db_url, "320104", 8)

    async def run():
        async with client() as http:
            async with Sse(http, server + "/events") as first:
                start = int((await first.next())["id"])

                def writer():
                    for i, p in enumerate(points):
                        add_source(city_db_url, f"EV-C{i}", p)
                        time.sleep(0.03)

                thread = threading.Thread(target=writer)
                thread.start()
                resumed = []
                seen: list[dict] = []
                # Open three more streams mid-way, each resuming from what the first stream saw
                # (16 sources make at least 18 events: 16 grid cells and 2 districts turn red).
                while len(resumed) < 3:
                    seen += await first.take(1, within=5.0)
                    if len(seen) in (2, 9, 17) and len(resumed) < 3:
                        s = Sse(http, server + "/events", headers={"Last-Event-ID": seen[-1]["id"]})
                        await s.__aenter__()
                        resumed.append((int(seen[-1]["id"]), s))
                thread.join()
                expected = events_after(city_db_url, start)
                seen += await first.take(len(expected) - len(seen), within=5.0)
                assert as_tuples(seen) == expected
                for after, s in resumed:
                    want = [e for e in expected if e[0] > after]
                    await s.next()  # ready
                    assert as_tuples(await s.take(len(want), within=5.0)) == want
                    assert await s.quiet(0.3) == []
                    await s.__aexit__(None, None, None)

    asyncio.run(run())


# -- commit order, gaps and outages -------------------------------------------------------------


def test_an_open_transaction_holds_back_later_events_until_it_commits(server, city_db_url):
    """Ids are drawn before commit: a later id committing first must not overtake an earlier one."""
    (pa,) = blue_points(city_db_url, "320102", 1)
    (pb,) = blue_points(city_db_url, "320104", 1)

    async def run():
        async with client() as http, Sse(http, server + "/events") as stream:
            start = int((await stream.next())["id"])
            with psycopg.connect(city_db_url) as slow:
                slow.execute(INSERT, ("EV-SLOW", *pa))  # its events hold ids start+1..start+5, uncommitted
                await asyncio.to_thread(add_source, city_db_url, "EV-FAST", pb)  # start+6..start+10
                assert await stream.quiet(1.0) == []  # held back: start+1.. are not committed yet
                slow.commit()
            got = await stream.take(2 * PER_SOURCE)
            assert [int(e["id"]) for e in got] == list(range(start + 1, start + 2 * PER_SOURCE + 1))
            assert as_tuples(got) == events_after(city_db_url, start)

    asyncio.run(run())


def test_a_gap_held_too_long_lets_later_events_go_and_delivers_the_late_ones_without_id(
    server, city_db_url, monkeypatch
):
    monkeypatch.setattr(live_events, "GAP_MAX_WAIT_S", 0.5)
    (pa,) = blue_points(city_db_url, "320102", 1)
    (pb,) = blue_points(city_db_url, "320104", 1)

    async def run():
        async with client() as http, Sse(http, server + "/events") as stream:
            start = int((await stream.next())["id"])
            with psycopg.connect(city_db_url) as slow:
                slow.execute(INSERT, ("EV-SLOW", *pa))
                await asyncio.to_thread(add_source, city_db_url, "EV-FAST", pb)
                fast = await stream.take(PER_SOURCE, within=3.0)  # after the 0.5 s the gap may hold them
                assert [int(e["id"]) for e in fast] == list(range(start + 6, start + 11))
                # A client resuming now replays what is committed, and gets the rest when it commits.
                resumer = Sse(http, server + "/events", headers={"Last-Event-ID": str(start)})
                await resumer.__aenter__()
                await resumer.next()
                assert [int(e["id"]) for e in await resumer.take(PER_SOURCE)] == list(
                    range(start + 6, start + 11)
                )
                slow.commit()
            late = await stream.take(PER_SOURCE, within=3.0)
            assert all("id" not in e for e in late)  # never moves a client's resume point back
            db = events_after(city_db_url, start)
            assert [(e["event"], e["json"]) for e in late] == [(k, p) for _, k, p in db[:PER_SOURCE]]
            assert [e["json"] for e in await resumer.take(PER_SOURCE)] == [e["json"] for e in late]
            assert await resumer.quiet(0.3) == []
            await resumer.__aexit__(None, None, None)
            # Once committed, a replay has everything in id order.
            async with Sse(http, server + "/events", headers={"Last-Event-ID": str(start)}) as again:
                await again.next()
                assert as_tuples(await again.take(2 * PER_SOURCE)) == db
                assert await again.quiet(0.3) == []

    asyncio.run(run())


def test_rolled_back_ids_do_not_stall_the_stream(server, city_db_url):
    (pa,) = blue_points(city_db_url, "320102", 1)
    (pb,) = blue_points(city_db_url, "320104", 1)

    async def run():
        async with client() as http, Sse(http, server + "/events") as stream:
            start = int((await stream.next())["id"])
            with psycopg.connect(city_db_url) as conn:
                conn.execute(INSERT, ("EV-GONE", *pa))
                conn.rollback()  # ids start+1..start+5 are burnt
            await asyncio.to_thread(add_source, city_db_url, "EV-AFTER", pb)
            # Released as soon as no transaction that could fill the gap is running (at worst
            # GAP_MAX_WAIT_S, if the shared test cluster is busy with other databases' work).
            got = await stream.take(PER_SOURCE, within=live_events.GAP_MAX_WAIT_S + 2)
            assert [int(e["id"]) for e in got] == list(range(start + 6, start + 11))

    asyncio.run(run())


def test_the_hub_reconnects_after_losing_its_connection_and_misses_nothing(server, city_db_url):
    p = blue_points(city_db_url, "320102", 2)

    def kill_listener() -> int:
        with psycopg.connect(city_db_url, autocommit=True) as conn:
            return conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'gridrisk-events' AND datname = current_database()"
            ).fetchone()[0]

    def listeners() -> int:
        with psycopg.connect(city_db_url, autocommit=True) as conn:
            return conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE application_name = 'gridrisk-events' AND datname = current_database()"
            ).fetchone()[0]

    async def run():
        async with client() as http, Sse(http, server + "/events") as stream:
            start = int((await stream.next())["id"])
            received: list[dict] = []
            for i in range(2):
                assert await asyncio.to_thread(kill_listener) == 1
                # Written while the hub is away: delivered once it is back, on the same stream.
                await asyncio.to_thread(add_source, city_db_url, f"EV-R{i}", p[i])
                expected = events_after(city_db_url, start)
                received += await stream.take(len(expected) - len(received), within=15.0)
            assert as_tuples(received) == expected
            assert await stream.quiet(0.5) == []
            assert await asyncio.to_thread(listeners) == 1  # one connection, no leftovers
        # A new client after the outage still resumes exactly.
        async with (
            client() as http,
            Sse(http, server + "/events", headers={"Last-Event-ID": str(start)}) as s,
        ):
            await s.next()
            expected = events_after(city_db_url, start)
            assert as_tuples(await s.take(len(expected))) == expected

    asyncio.run(run())


# -- the outbox reader and the hub on their own ---------------------------------------------------


def test_the_outbox_reader_hands_each_consumer_every_event_once_late_commits_included(city_db_url):
    """The consumer contract: catch_up() is read-after-write; a late id comes when it commits, once."""
    (pa,) = blue_points(city_db_url, "320102", 1)
    (pb,) = blue_points(city_db_url, "320104", 1)

    async def run():
        async with AsyncConnectionPool(city_db_url, min_size=1, max_size=2) as pool:
            reader = OutboxReader(pool)  # not started: read only when asked
            got: list[int] = []
            resets: list[int] = []

            def on_batch(batch):
                got.extend(e.id for e in batch.events)
                if batch.reset:
                    resets.append(batch.read)

            reader.subscribe(on_batch)
            first = await reader.catch_up()
            assert resets == [first] and got == [] and reader.complete_from == first
            start = reader.position
            with psycopg.connect(city_db_url) as slow:
                slow.execute(INSERT, ("OUT-SLOW", *pa))  # ids start+1..start+5, still open
                await asyncio.to_thread(add_source, city_db_url, "OUT-FAST", pb)  # start+6..start+10
                await reader.catch_up()  # committed before the call: delivered by it
                assert got == list(range(start + 6, start + 11))
                assert set(range(start + 1, start + 6)) <= reader.missing
                await reader.catch_up()
                assert got == list(range(start + 6, start + 11))  # nothing twice
                slow.commit()
            await reader.catch_up()
            assert got == list(range(start + 6, start + 11)) + list(range(start + 1, start + 6))
            for _ in range(3):  # the writers have ended: the watch settles
                await reader.catch_up()
            assert not reader.missing and not reader.watches and resets == [first]
            await reader.aclose()
            with pytest.raises(psycopg.OperationalError):
                await reader.catch_up()

    asyncio.run(run())


def test_a_slow_subscriber_is_dropped_without_holding_back_the_others(city_db_url):
    points = blue_points(city_db_url, "320102", 2)

    async def run():
        async with AsyncConnectionPool(city_db_url, min_size=1, max_size=2) as pool:
            reader = OutboxReader(pool)
            reader.start()
            hub = EventHub(reader)
            assert await hub.wait_ready(10)
            slow = hub.subscribe(size=3)
            fast = hub.subscribe()
            for i, p in enumerate(points):
                await asyncio.to_thread(add_source, city_db_url, f"EV-S{i}", p)
            expected = events_after(city_db_url, fast.start)
            got = []
            async with asyncio.timeout(5):
                while len(got) < len(expected):
                    got.append(await fast.queue.get())
            assert [(e.id, e.kind, json.loads(e.data)) for e in got] == expected
            assert slow.dropped and slow.queue.get_nowait() is None  # its stream ends; it resumes by id
            assert hub.stats()["subscribers"] == 1
            await hub.aclose()
            assert fast.queue.get_nowait() is None
            await reader.aclose()
            assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("gridrisk-outbox")]

    asyncio.run(run())


def test_the_hub_stops_when_the_app_pool_closes(city_db_url):
    async def run():
        pool = AsyncConnectionPool(city_db_url, min_size=1, max_size=1, open=False)
        await pool.open()
        reader = OutboxReader(pool)
        reader.start()
        hub = EventHub(reader)
        assert await hub.wait_ready(10)
        sub = hub.subscribe()
        await pool.close()
        async with asyncio.timeout(outbox.POLL_S + 3):
            assert await sub.queue.get() is None
        assert hub.closed and reader.closed
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("gridrisk-outbox")]

    asyncio.run(run())


# -- retention, bad input, access ---------------------------------------------------------------


def test_prune_and_the_replay_gap_notice(server, city_db_url):
    (p,) = blue_points(city_db_url, "320104", 1)
    with psycopg.connect(city_db_url) as conn:  # the template's own build left layer_changed events
        conn.execute("DELETE FROM events")
    add_source(city_db_url, "EV-P", p)
    events = events_after(city_db_url, 0)
    assert len(events) == PER_SOURCE
    with psycopg.connect(city_db_url) as conn:
        conn.execute("UPDATE events SET at = now() - interval '8 days' WHERE id <= %s", (events[1][0],))
        assert prune_events(conn, keep_days=7) == 2
        assert prune_events(conn, keep_days=7) == 0
    kept = events[2:]

    async def run():
        async with client() as http:
            headers = {"Last-Event-ID": str(events[0][0])}  # the client saw the first; the second is gone
            async with Sse(http, server + "/events", headers=headers) as s:
                assert (await s.next())["event"] == "ready"
                notice = await s.next()
                assert notice["event"] == "replay_gap" and "id" not in notice
                assert (
                    notice["json"]["reason"] == "pruned" and notice["json"]["oldest_retained"] == kept[0][0]
                )
                assert as_tuples(await s.take(len(kept))) == kept
            # An id this database never issued (another database, or a restore): start from now.
            async with Sse(http, server + "/events", headers={"Last-Event-ID": "999999"}) as s:
                ready = await s.next()
                assert ready["id"] == str(kept[-1][0])
                notice = await s.next()
                assert notice["event"] == "replay_gap" and notice["json"]["reason"] == "unknown_id"
                assert await s.quiet(0.5) == []
            # A recent resume point gets no notice.
            async with Sse(http, server + "/events", headers={"Last-Event-ID": str(kept[0][0])}) as s:
                await s.next()
                assert as_tuples(await s.take(len(kept) - 1)) == kept[1:]

    asyncio.run(run())


def test_bad_parameters_are_422_problems(city_client):
    r = city_client.get("/events", headers={"Last-Event-ID": "abc"})
    assert assert_problem(r, 422)["errors"][0]["field"] == "Last-Event-ID"
    r = city_client.get("/events", params={"layer": "nope"})
    body = assert_problem(r, 422)
    assert "safety" in body["detail"] and body["errors"][0]["field"] == "layer"
    assert_problem(city_client.get("/events", params={"kinds": " , "}), 422)
    assert_problem(city_client.get("/events", params={"last_event_id": -1}), 422)


def test_events_need_a_key_when_reads_are_private(city_db_url, city_keys):
    async def run(base):
        async with client() as http:
            r = await http.get(base + "/events")
            assert_problem(r, 401)
            async with Sse(http, base + "/events", headers=bearer(city_keys["viewer"])) as s:
                assert (await s.next())["event"] == "ready"

    with live_server(city_db_url, public_read=False) as base:
        asyncio.run(run(base))
