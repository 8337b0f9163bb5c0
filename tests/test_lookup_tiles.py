"""What makes a lookup cheap keeps it exact: tile answers (lookup/tiles.py), the outbox probe
(events/probe.py) and the bare route (api/bare_route.py)."""

from __future__ import annotations

import time

import numpy as np
import psycopg
import pytest
import shapely
from conftest import make_client
from test_cell_index import _at, _database_says, _edge_points, _geoms, _insert_source, _interior, _ready

from gridrisk.events.outbox import Batch, OutboxEvent
from gridrisk.lookup.tiles import BLOCK, TileAnswers
from gridrisk.services.webhook_delivery import WebhookDispatcher


@pytest.fixture
def lookup_client(city_db_url):
    with make_client(city_db_url) as client:
        _ready(client)
        yield client


def _tree_only(index, x: float, y: float):
    tiles, index.tiles = index.tiles, None
    try:
        return index.locate_one(x, y)
    finally:
        index.tiles = tiles


def test_tiles_at_production_size_agree_with_the_tree(lookup_client, city_db_url):
    index = lookup_client.app.state.cell_lookup.index
    tiles = TileAnswers(index, tile_m=25.0)
    assert tiles.tile_m == 25.0 and tiles.regions > 1000
    rng = np.random.default_rng(29)
    _, pieces = _geoms(city_db_url, "cell_pieces")
    minx, miny, maxx, maxy = shapely.total_bounds(pieces)
    random = np.column_stack([rng.uniform(minx - 0.01, maxx + 0.01, 20_000), rng.uniform(miny, maxy, 20_000)])
    # Points exactly on tile edges and corners, where the floor arithmetic decides.
    iu, iv = rng.integers(0, tiles.nx, 3000), rng.integers(0, tiles.ny, 3000)
    corners = np.column_stack([tiles.x0 + iu * tiles.dx, tiles.y0 + iv * tiles.dy])
    along = np.column_stack([tiles.x0 + iu * tiles.dx, tiles.y0 + (iv + rng.uniform(size=3000)) * tiles.dy])
    answered = 0
    for x, y in np.vstack([random, corners, along]).tolist():
        region = tiles.region(x, y)
        if region:
            answered += 1
            assert (tiles.rows[region].tolist(), tiles.inside[region]) == _tree_only(index, x, y), (x, y)
    assert answered > 0.6 * 26_000  # most points are answered from the tiles
    # On a boundary (vertices, edges, the cuts between pieces, the city's outline) the tree decides.
    _, cities = _geoms(city_db_url, "city_parts")
    for x, y in np.vstack([_edge_points(pieces, rng, 3000), _edge_points(cities, rng, 200)]).tolist():
        assert tiles.region(x, y) == 0, (x, y)


def test_tiles_pack_blocks_by_their_regions(lookup_client):
    index = lookup_client.app.state.cell_lookup.index
    tiles = TileAnswers(index, tile_m=200.0)
    assert tiles.nx % BLOCK == 0 and tiles.ny % BLOCK == 0
    assert len(tiles.blocks) == (tiles.nx // BLOCK) * (tiles.ny // BLOCK)
    assert any(isinstance(b, int) for b in tiles.blocks) and any(isinstance(b, bytes) for b in tiles.blocks)
    # Off the raster: the tree answers.
    assert tiles.region(tiles.x0 - 1, tiles.y0) == 0 and tiles.region(tiles.x0, tiles.y0 + 90) == 0
    # A budget smaller than the city at this size makes the tiles coarser, not the build bigger.
    coarse = TileAnswers(index, tile_m=25.0, max_tiles=100_000)
    assert coarse.nx * coarse.ny <= 100_000 + (coarse.nx + coarse.ny) * BLOCK and coarse.tile_m > 25.0


def test_lookups_answer_from_tiles_byte_for_byte(lookup_client, city_db_url):
    service = lookup_client.app.state.cell_lookup
    tiles = service.index.tiles
    assert tiles is not None  # built by the app
    rng = np.random.default_rng(3)
    points = [p for _, p in _interior(city_db_url, "safety", 40) + _interior(city_db_url, "emergency", 20)]
    points += np.column_stack([rng.uniform(118.6, 119.0, 60), rng.uniform(31.8, 32.2, 60)]).tolist()
    assert sum(tiles.region(x, y) > 0 for x, y in points) > 20
    for point, want in zip(points, _database_says(city_db_url, points), strict=True):
        outside = b'"code"' not in want and b'"inside_city" : false' in want
        assert _at(lookup_client, point) == want or outside


def test_a_write_shows_at_once_in_a_tile_answered_cell(city_db_url):
    with make_client(city_db_url) as client:
        service = _ready(client)
        (_, point), *_ = _interior(city_db_url, "comprehensive", 1)
        assert service.index.tiles.region(*point) > 0
        before = _at(client, point)
        with psycopg.connect(city_db_url, autocommit=True) as conn:
            _insert_source(conn, "RS-TILE-1", point, "red")
        after = _at(client, point)
        assert after != before and b'"colour" : "red"' in after
        (want,) = _database_says(city_db_url, [point])
        assert after == want


# -- the outbox probe ---------------------------------------------------------------------------


def test_probe_answers_reads_and_a_lost_probe_falls_back(city_db_url):
    with make_client(city_db_url) as client:
        service = _ready(client)
        reader = client.app.state.outbox
        cells = _interior(city_db_url, "safety", 3)
        probes = reader.probe.probes
        for _, point in cells:
            _at(client, point)
        assert reader.probe.probes > probes  # nothing written: the probe stood for the reads
        with psycopg.connect(city_db_url, autocommit=True) as conn:
            (killed,) = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'gridrisk-outbox-probe' AND datname = current_database()"
            ).fetchone()
            assert killed == 1
            failures = reader.probe.failures
            # The write is seen although the probe's connection is gone: the usual read answers.
            _insert_source(conn, "RS-PROBE-1", cells[0][1], "red")
            got = _at(client, cells[0][1])
            assert b'"colour" : "red"' in got and got == _database_says(city_db_url, [cells[0][1]])[0]
            assert reader.probe.failures > failures
            # After its pause the probe connects again and answers again.
            time.sleep(1.1)
            _at(client, cells[1][1])
            probes = reader.probe.probes
            _insert_source(conn, "RS-PROBE-2", cells[2][1], "orange")
            got = _at(client, cells[2][1])
            assert b'"colour" : "orange"' in got or b'"colour" : "red"' in got
            assert got == _database_says(city_db_url, [cells[2][1]])[0]
            assert reader.probe.up and reader.probe.probes > probes
        assert service.fallbacks == 0


def test_webhooks_look_for_deliveries_only_after_events():
    dispatcher = WebhookDispatcher(pool=None)  # type: ignore[arg-type]
    dispatcher.on_outbox(Batch(7, [], 120))
    assert not dispatcher._wake.is_set()  # an empty read (every lookup's) costs no query
    dispatcher.on_outbox(Batch(8, [OutboxEvent(121, "cell_colour", "safety", "safety", "{}")], 121))
    assert dispatcher._wake.is_set()
    dispatcher._wake.clear()
    dispatcher.on_outbox(Batch(9, [], 121, reset=True))
    assert dispatcher._wake.is_set()


# -- the bare route -----------------------------------------------------------------------------


def test_bare_route_keeps_the_routes_answers(lookup_client):
    assert lookup_client.put("/cells/at", json={}).status_code == 405
    r = lookup_client.get("/cells/at", params={"lon": "east", "lat": 32})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert "lon" in r.text
    r = lookup_client.get("/cells/at", params={"lon": 100.0, "lat": 30.0})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert "/cells/at" in lookup_client.get("/openapi.json").json()["paths"]


def test_bare_route_refuses_an_endpoint_fastapi_would_have_to_solve():
    from fastapi import Request

    from gridrisk.api.bare_route import BareRoute

    async def takes_a_query(request: Request, lon: float):  # pragma: no cover (never called)
        raise AssertionError

    with pytest.raises(TypeError, match="takes the Request alone"):
        BareRoute("/x", takes_a_query, methods=["GET"])


def test_lookups_need_no_pooled_connection(city_db_url):
    """With every pooled connection taken (a burst of heavy reads), a lookup still answers from
    memory at once and still shows a plain-SQL write: the probe has a connection of its own."""
    from fastapi.testclient import TestClient

    from gridrisk.main import create_app
    from gridrisk.settings import Settings

    settings = Settings(database_url=city_db_url, pool_min_size=1, pool_max_size=2, pool_timeout_s=1)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        service = _ready(client)
        pool = client.app.state.pool
        cells = _interior(city_db_url, "safety", 2)
        _at(client, cells[0][1])  # the probe is connected
        held = [client.portal.call(pool.getconn) for _ in range(2)]
        try:
            with psycopg.connect(city_db_url, autocommit=True) as conn:
                _insert_source(conn, "RS-NOPOOL-1", cells[1][1], "red")
            started = time.perf_counter()
            got = _at(client, cells[1][1])
            assert time.perf_counter() - started < 0.5  # no wait for a pooled connection (1 s)
            assert b'"colour" : "red"' in got
        finally:
            for conn in held:
                client.portal.call(pool.putconn, conn)
        assert got == _database_says(city_db_url, [cells[1][1]])[0]
        assert service.fallbacks == 0
