"""GET /shelters/nearest from memory (lookup/shelters.py): byte for byte what PostGIS answers, as current.

The distances are PostGIS's own (geometry/geodesic.py), the lower bounds never exceed them, and
every write that moves free places (a check-in, a plain-SQL update, a reservation) shows in the
next answer.
"""

from __future__ import annotations

import asyncio

import numpy as np
import psycopg
import pytest
import shapely
from conftest import assert_problem, bearer, make_client
from psycopg.rows import dict_row
from test_cell_index import _edge_points, _geoms, _ready
from test_warning_matching import AREA, post, scene, warning  # noqa: F401 (scene: a fixture)

from gridrisk.db.sql_files import sql
from gridrisk.geometry.geodesic import R_LOWER, SiteSet, unit_vector
from gridrisk.lookup.shelter_sites import CELL_SITES, ShelterSites

CLASSES = ("emergency", "fixed", "central")
STATUSES = ("open", "standby", "full", "closed")
CITY_BOX = (
    "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM city_parts) c"
)


def _database(url: str, lon, lat, limit=5, klass=None, statuses=("open", "standby"), min_free=0) -> bytes:
    """What shelter_nearest.sql answers (with its second pass), as the route ran it before."""
    params = {"lon": lon, "lat": lat, "limit": limit, "candidates": limit * 2 + 10, "class": klass,
              "statuses": list(statuses), "min_free": min_free}  # fmt: skip
    with psycopg.connect(url, row_factory=dict_row) as conn:
        row = conn.execute(sql("shelter_nearest"), params).fetchone()
        if row["scan_more"]:
            params["candidates"] = None
            row = conn.execute(sql("shelter_nearest"), params).fetchone()
    return row["body"].encode()


def _sites(url: str, n: int, seed: int) -> None:
    """N shelters over the city: points, squares, a few multipolygons with holes; every status."""
    rng = np.random.default_rng(seed)
    with psycopg.connect(url) as conn:
        minx, miny, maxx, maxy = conn.execute(CITY_BOX).fetchone()
        for i in range(n):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if i % 5 == 0:
                geom = shapely.box(x, y, x + rng.uniform(5e-4, 4e-3), y + rng.uniform(5e-4, 3e-3))
            elif i % 17 == 1:
                outer = shapely.box(x, y, x + 3e-3, y + 3e-3).difference(
                    shapely.box(x + 1e-3, y + 1e-3, x + 2e-3, y + 2e-3)
                )
                geom = shapely.MultiPolygon([outer, shapely.box(x + 5e-3, y, x + 6e-3, y + 1e-3)])
            else:
                geom = shapely.Point(x, y)
            capacity = int(rng.integers(50, 3000))
            status = STATUSES[i % 4]
            occupancy = (
                capacity
                if status == "full"
                else (0 if status in ("closed", "standby") else int(rng.integers(0, capacity)))
            )
            conn.execute(
                "INSERT INTO shelters (code, name, class, capacity, occupancy, status, geom, created_by,"
                " updated_by) VALUES (%s, %s, %s, %s, %s, %s, ST_GeomFromText(%s, 4326), 't', 't')",
                (f"NM-{seed}-{i:04d}", f"避难场所{i}", CLASSES[i % 3], capacity, occupancy, status, geom.wkt),
            )


@pytest.fixture
def near(city_db_url):
    _sites(city_db_url, 240, seed=5)
    with make_client(city_db_url) as client:
        _ready(client)
        yield client, city_db_url


def _query_points(url: str, rng, n: int) -> list[tuple[float, float]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT ST_AsBinary(geom) FROM shelters ORDER BY id").fetchall()
        minx, miny, maxx, maxy = conn.execute(CITY_BOX).fetchone()
    geoms = shapely.from_wkb([bytes(r[0]) for r in rows])
    pts = [(rng.uniform(minx - 0.05, maxx + 0.05), rng.uniform(miny - 0.05, maxy + 0.05)) for _ in range(n)]
    for g in geoms[:: max(1, len(geoms) // 60)]:  # on, near and inside the sites
        ring = np.asarray(
            shapely.get_exterior_ring(g).coords if g.geom_type == "Polygon" else g.centroid.coords
        )
        a = ring[0]
        pts += [(a[0], a[1]), (a[0] + 3e-7, a[1] - 2e-7), tuple(g.representative_point().coords[0])]
    return pts


def test_memory_answers_byte_for_byte_what_the_database_answers(near):
    client, url = near
    finder = client.app.state.nearest_shelters
    rng = np.random.default_rng(8)
    variants = [
        {},
        {"limit": 1},
        {"limit": 12},
        {"limit": 100},
        {"status": ["full", "closed"], "limit": 7},
        {"class": "fixed", "limit": 6},
        {"min_free": 1500, "limit": 4},
        {"class": "central", "status": ["open"], "min_free": 10},
    ]
    points = _query_points(url, rng, 400)
    for n, (lon, lat) in enumerate(points):
        v = variants[n % len(variants)]
        params = [("lon", lon), ("lat", lat)] + [
            (k, s) for k, val in v.items() for s in (val if isinstance(val, list) else [val])
        ]
        got = client.get("/shelters/nearest", params=params)
        assert got.status_code == 200, got.text
        want = _database(
            url,
            lon,
            lat,
            v.get("limit", 5),
            v.get("class"),
            tuple(v.get("status", ("open", "standby"))),
            v.get("min_free", 0),
        )
        assert got.content == want, (lon, lat, v)
    assert finder.answered >= len(points) and finder.fallbacks == 0
    # Both ways of finding candidates answered: a grid cell's list, and every site's bound.
    assert 0 < finder.sites.cell_answers < finder.answered
    assert client.get("/health").json()["lookup"]["shelters"]["memory"] is True


def test_distances_and_lower_bounds_agree_with_postgis(city_db_url):
    """Over thousands of point–site pairs, PostGIS's ST_Distance(geography) to the same 0.1 m (and to
    a few millimetres unrounded), never below the bound; polygons with holes and multipolygons too."""
    _sites(city_db_url, 120, seed=9)
    with psycopg.connect(city_db_url) as conn:
        rows = conn.execute("SELECT id, ST_AsBinary(geom) FROM shelters ORDER BY id").fetchall()
        geoms = shapely.from_wkb([bytes(r[1]) for r in rows])
        sites = SiteSet.of(geoms)
        rng = np.random.default_rng(3)
        points = _query_points(city_db_url, rng, 60)
        pairs = 0
        for lon, lat in points:
            want = conn.execute(
                "SELECT ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)"
                " FROM shelters ORDER BY id",
                (lon, lat),
            ).fetchall()
            p = unit_vector(lon, lat)
            bounds = sites.lower_bounds(p) * R_LOWER
            for i, (w,) in enumerate(want):
                d = sites.distance(i, sites.origin(lon, lat), p)
                assert abs(d - w) < 0.005 and round(d, 1) == round(w, 1), (lon, lat, rows[i][0], d, w)
                assert bounds[i] <= w, (lon, lat, rows[i][0])
                pairs += 1
    assert pairs > 10_000


def test_cell_lists_and_bounds_from_the_point_find_the_same_shelters(city_db_url):
    """A grid cell's candidate list (bounds from anywhere in the cell) gives what the bounds from the
    point itself give, near and far from the sites, under every filter; or it says it cannot."""
    _sites(city_db_url, 200, seed=13)
    with psycopg.connect(city_db_url) as conn:
        sites = ShelterSites(conn.execute(sql("shelter_sites"), {"ids": None}).fetchall())
    rng = np.random.default_rng(21)
    points = _query_points(city_db_url, rng, 1500)
    points += list(zip(rng.uniform(110, 125, 300).tolist(), rng.uniform(20, 40, 300).tolist(), strict=True))
    keys = [
        (("open", "standby"), None, 0),
        (("open",), None, 0),
        (STATUSES, "fixed", 500),
        (("closed",), None, 0),
    ]
    told = [0] * len(keys)
    for n, (lon, lat) in enumerate(points):
        key = keys[n % len(keys)]
        excluded, count, passes = sites._mask(key)
        k = min((1, 5, CELL_SITES // 2)[n % 3], count)
        p, at = unit_vector(lon, lat), sites.sites.origin(lon, lat)
        from_cell = sites._from_cell(passes, k, at, p)
        if from_cell is not None:
            told[n % len(keys)] += 1
            assert from_cell == sites._from_bounds(excluded, count, k, at, p), (lon, lat, key, k)
    # With the default filters (here half the shelters pass, sparse over the city) the cell's
    # list mostly tells; with filters that leave few, the bounds from the point answer instead.
    assert told[0] > 0.5 * len(points) / len(keys)


def test_the_city_outline_test_agrees_with_the_cells_lookup(near):
    client, url = near
    index = client.app.state.cell_lookup.index
    rng = np.random.default_rng(4)
    _, cities = _geoms(url, "city_parts")
    minx, miny, maxx, maxy = shapely.total_bounds(cities)
    random = np.column_stack(
        [rng.uniform(minx - 0.05, maxx + 0.05, 4000), rng.uniform(miny - 0.05, maxy + 0.05, 4000)]
    )
    for x, y in np.vstack([random, _edge_points(cities, rng, 300)]).tolist():
        assert index.city_holds(x, y) == index.locate_one(x, y)[1], (x, y)


def _open_point(url: str) -> tuple[int, float, float]:
    """The first open shelter on a point site with room, and where it is."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, ST_X(geom), ST_Y(geom) FROM shelters WHERE status = 'open'"
            " AND geometrytype(geom) = 'POINT' AND capacity - occupancy > 20 ORDER BY id LIMIT 1"
        ).fetchone()


def test_check_ins_and_plain_sql_writes_show_in_the_next_answer(near, city_keys):
    client, url = near
    finder = client.app.state.nearest_shelters
    sid, lon, lat = _open_point(url)

    def mine() -> dict:
        body = client.get("/shelters/nearest", params={"lon": lon, "lat": lat, "limit": 1}).json()
        assert body["features"][0]["id"] == sid
        return body["features"][0]["properties"]

    before = mine()
    r = client.post(f"/shelters/{sid}/occupancy", json={"delta": 7}, headers=bearer(city_keys["worker"]))
    assert r.status_code == 200, r.text
    after = mine()
    assert after["occupancy"] == before["occupancy"] + 7 and after["free"] == before["free"] - 7
    with psycopg.connect(url, autocommit=True) as conn:  # another process, plain SQL
        conn.execute("UPDATE shelters SET capacity = capacity + 1000 WHERE id = %s", (sid,))
    assert mine()["capacity"] == before["capacity"] + 1000
    with psycopg.connect(url, autocommit=True) as conn:  # a shelter that was not there is found at once
        conn.execute(
            "INSERT INTO shelters (code, name, class, capacity, status, geom, created_by, updated_by)"
            " VALUES ('NM-NEW', '新场所', 'emergency', 80, 'open',"
            " ST_SetSRID(ST_MakePoint(%s, %s), 4326), 't', 't')",
            (lon + 1e-6, lat),
        )
    body = client.get("/shelters/nearest", params={"lon": lon + 1e-6, "lat": lat, "limit": 1}).json()
    assert body["features"][0]["properties"]["code"] == "NM-NEW"
    assert finder.fallbacks == 0 and finder.loads >= 4


def test_reservations_write_an_event_and_show_in_the_next_answer(city_client, city_keys, scene):  # noqa: F811
    """A warning books places (a reservation insert): the shelters it names are a feature_changed,
    and the memory's next answer shows the places held, as the database does."""
    url = scene["url"]
    client = city_client
    _ready(client)
    s_a = scene["shelters"][0]
    with psycopg.connect(url) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM shelters WHERE id = %s", (s_a,)
        ).fetchone()
    client.get("/shelters/nearest", params={"lon": lon, "lat": lat})  # loaded before the booking
    with psycopg.connect(url) as conn:
        newest = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    post(client, city_keys["operator"], warning("M-NEAR", area={"geometry": AREA}), 201)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        held = conn.execute(
            "SELECT array_agg(DISTINCT shelter_id ORDER BY shelter_id) AS ids FROM shelter_reservations"
        ).fetchone()["ids"]
        events = conn.execute(
            "SELECT payload FROM events WHERE id > %s AND kind = 'feature_changed'"
            " AND payload->>'collection' = 'shelters'",
            (newest,),
        ).fetchall()
    assert held, "the warning booked no places"
    named = {i for e in events for i in e["payload"]["ids"]}
    assert set(held) <= named
    for params in (
        {"lon": lon, "lat": lat, "limit": 10},
        {"lon": lon, "lat": lat, "limit": 10, "min_free": 1},
    ):
        got = client.get("/shelters/nearest", params=params)
        assert got.content == _database(url, lon, lat, 10, min_free=params.get("min_free", 0))
    body = client.get("/shelters/nearest", params={"lon": lon, "lat": lat, "limit": 10}).json()
    assert any(f["properties"]["reserved"] > 0 for f in body["features"])
    # Released (the order ends): an update naming the same shelters.
    with psycopg.connect(url, autocommit=True) as conn:
        top = conn.execute("SELECT max(id) FROM events").fetchone()[0]
        conn.execute("UPDATE shelter_reservations SET released_at = now()")
        ids = conn.execute(
            "SELECT payload->'ids' FROM events WHERE id > %s AND kind = 'feature_changed'", (top,)
        ).fetchone()[0]
    assert set(ids) == set(held)
    got = client.get("/shelters/nearest", params={"lon": lon, "lat": lat, "limit": 10})
    assert got.content == _database(url, lon, lat, 10)
    assert all(f["properties"]["reserved"] == 0 for f in got.json()["features"])
    assert client.app.state.nearest_shelters.fallbacks == 0


def test_the_database_answers_while_memory_cannot(near, monkeypatch):
    client, url = near
    finder = client.app.state.nearest_shelters

    async def broken(n: int) -> None:
        finder._flight = None
        raise psycopg.OperationalError("the load failed")

    with psycopg.connect(url, autocommit=True) as conn:  # a change: memory must reload before answering
        conn.execute("UPDATE shelters SET capacity = capacity + 1 WHERE id = (SELECT min(id) FROM shelters)")
    monkeypatch.setattr(finder, "_load", broken)
    got = client.get("/shelters/nearest", params={"lon": 118.8, "lat": 32.05, "limit": 9})
    assert got.status_code == 200 and got.content == _database(url, 118.8, 32.05, 9)
    assert finder.fallbacks == 1 and client.get("/health").json()["lookup"]["shelters"]["memory"] is False
    monkeypatch.undo()
    assert client.get("/shelters/nearest", params={"lon": 118.8, "lat": 32.05}).content == _database(
        url, 118.8, 32.05
    )
    assert finder.fallbacks == 1 and finder.current()


def test_the_query_is_checked_as_before(city_db_url):
    """Rights first (401 before 422), then each parameter named in the 422; repeated status kept."""
    with make_client(city_db_url, public_read=False) as client:
        assert_problem(client.get("/shelters/nearest", params={"lon": 118.8, "lat": 32.0, "limit": 0}), 401)
    with make_client(city_db_url) as client:
        for params, field in (
            ({"lon": 181, "lat": 32}, "lon"),
            ({"lon": 118.8}, "lat"),
            ({"lon": 118.8, "lat": 32, "limit": "many"}, "limit"),
            ({"lon": 118.8, "lat": 32, "status": "bogus"}, "status"),
            ({"lon": 118.8, "lat": 32, "class": "x" * 33}, "class"),
            ({"lon": 118.8, "lat": 32, "min_free": -1}, "min_free"),
        ):
            body = assert_problem(client.get("/shelters/nearest", params=params), 422)
            assert field in body["detail"], body
        spec = client.get("/openapi.json").json()["paths"]["/shelters/nearest"]["get"]
        assert [p["name"] for p in spec["parameters"]] == [
            "lon",
            "lat",
            "limit",
            "class",
            "status",
            "min_free",
        ]
        assert spec["parameters"][4]["schema"]["anyOf"][0]["type"] == "array"


def test_changes_still_loading_hold_back_only_the_answers_they_can_touch(near, monkeypatch):
    """While a shelter's change is loading, an answer that shelter cannot enter (its old and new
    site farther than the answer's last shelter) comes from memory at once; one near it waits for
    the load and shows the change."""
    import threading
    import time

    client, url = near
    finder = client.app.state.nearest_shelters
    a, ax, ay = _open_point(url)
    with psycopg.connect(url) as conn:
        b, bx, by = conn.execute(
            "SELECT b.id, ST_X(b.geom), ST_Y(b.geom) FROM shelters a, shelters b WHERE a.id = %s"
            " AND b.status = 'open' AND geometrytype(b.geom) = 'POINT'"
            " AND ST_Distance(a.geom::geography, b.geom::geography) > 3000 ORDER BY b.id LIMIT 1",
            (a,),
        ).fetchone()
    for lon, lat in ((ax, ay), (bx, by)):
        client.get("/shelters/nearest", params={"lon": lon, "lat": lat, "limit": 1})
    release = client.portal.call(_event)
    read = finder._read

    async def held(ids):
        await release.wait()
        return await read(ids)

    monkeypatch.setattr(finder, "_read", held)
    with psycopg.connect(url, autocommit=True) as conn:  # a check-in at A, by another process
        conn.execute("UPDATE shelters SET occupancy = occupancy + 3 WHERE id = %s", (a,))
    untouched = finder.untouched
    got: list = []
    far = threading.Thread(
        target=lambda: got.append(client.get("/shelters/nearest", params={"lon": bx, "lat": by, "limit": 1}))
    )
    far.start()
    far.join(5)
    try:
        assert got, "an answer A's change cannot touch waited for its load"
        assert got[0].json()["features"][0]["id"] == b and finder.untouched == untouched + 1
        assert got[0].content == _database(url, bx, by, 1)
    except AssertionError:
        client.portal.call(release.set)
        raise
    answers: list = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            client.get("/shelters/nearest", params={"lon": ax, "lat": ay, "limit": 1})
        )
    )
    waiting.start()
    time.sleep(0.5)
    assert waiting.is_alive()  # held back by the load A's change needs
    client.portal.call(release.set)
    waiting.join(10)
    assert answers[0].content == _database(url, ax, ay, 1)
    assert answers[0].json()["features"][0]["properties"]["occupancy"] >= 3


async def _event() -> asyncio.Event:
    return asyncio.Event()


def test_a_point_at_an_edges_pole_is_measured_as_postgis_does(city_db_url):
    """From the pole of an edge's great circle (the south pole, for an edge along the equator) the
    projection onto the edge is undefined: every point of the edge is as near. The distance is still
    PostGIS's, in the walked (few edges) and the vectorised (many edges) search alike."""
    box = shapely.box(0.0, 0.0, 10.0, 5.0)
    shapes = [box, shapely.segmentize(box, 1.0)]
    sites = SiteSet.of(shapes)
    with psycopg.connect(city_db_url) as conn:
        for lon, lat in ((0.0, -90.0), (5.0, -90.0), (0.0, 90.0)):
            for i, shape in enumerate(shapes):
                want = conn.execute(
                    "SELECT ST_Distance(ST_GeomFromText(%s, 4326)::geography,"
                    " ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)",
                    (shape.wkt, lon, lat),
                ).fetchone()[0]
                got = sites.distance(i, sites.origin(lon, lat), unit_vector(lon, lat))
                assert round(got, 1) == round(want, 1), (lon, lat, i, got, want)
