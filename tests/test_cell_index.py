"""The in-memory lookup index (lookup/): PostGIS's answers byte for byte, and as current as PostGIS.

Every check compares the API's answer with cells_at.sql run on the database at that moment, so
"the same" means the same bytes: fields, order, numbers, colours, counts and workers.
"""

from __future__ import annotations

import io
import threading
import time

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely
from conftest import bearer, make_client
from typer.testing import CliRunner

from gridrisk.cli import app as cli_app
from gridrisk.db.sql_files import sql
from gridrisk.events.outbox import Batch
from gridrisk.lookup.answer import pg_float


def _database_says(url: str, points) -> list[bytes]:
    """What PostGIS answers for POINTS ([lon, lat] each), now."""
    points = np.asarray(points, float).reshape(-1, 2)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            sql("cells_at"), {"lons": points[:, 0].tolist(), "lats": points[:, 1].tolist()}
        ).fetchall()
    return [row[3].encode() for row in rows]


def _ready(client, within: float = 30.0):
    """The app's lookup service, once it answers from memory, with its tiles when it builds them."""
    service = client.app.state.cell_lookup
    deadline = time.monotonic() + within
    while not service.usable() or (service.tile_m and service.index.tiles is None):
        assert time.monotonic() < deadline, service.stats()
        time.sleep(0.05)
    return service


def _at(client, point) -> bytes:
    r = client.get("/cells/at", params={"lon": point[0], "lat": point[1]})
    assert r.status_code in (200, 404), r.text
    return r.content


def _same_as_database(client, url: str, point) -> None:
    got = _at(client, point)
    (want,) = _database_says(url, [point])
    assert got == want


def _geoms(url: str, table: str, layer: str | None = None) -> tuple[list[str], np.ndarray]:
    where = " WHERE c.layer = %(layer)s" if layer else ""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            f"SELECT c.{'code' if table == 'cells' else 'id::text'}, ST_AsBinary(c.geom)"  # noqa: S608
            f" FROM {table} c{where} ORDER BY 1",
            {"layer": layer},
        ).fetchall()
    return [r[0] for r in rows], shapely.from_wkb([bytes(r[1]) for r in rows])


def _edge_points(geoms: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """Per ring picked: a vertex, an edge's midpoint and a random point on an edge (shared edges)."""
    out = []
    for g in geoms[rng.choice(len(geoms), min(n, len(geoms)), replace=False)]:
        ring = shapely.get_coordinates(shapely.get_exterior_ring(g))
        k = rng.integers(0, len(ring) - 1)
        a, b = ring[k], ring[k + 1]
        out += [a, (a + b) / 2, a + (b - a) * rng.uniform()]
    return np.array(out)


@pytest.fixture
def indexed(city_db_url):
    """A client whose lookups are answered from memory."""
    with make_client(city_db_url) as client:
        _ready(client)
        yield client


def _interior(url: str, layer: str, n: int = 3) -> list[tuple[str, tuple[float, float]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT code, ST_X(p), ST_Y(p) FROM (SELECT code, ST_PointOnSurface(geom) AS p FROM cells"
            " WHERE layer = %s ORDER BY code LIMIT %s) c",
            (layer, n),
        ).fetchall()
    return [(code, (x, y)) for code, x, y in rows]


def _source(code: str, point, assessment: dict) -> dict:
    return {
        "code": code,
        "name": f"测试源 {code}",
        "category": "hazardous_chemicals",
        "geometry": {"type": "Point", "coordinates": list(point)},
        "assessment": assessment,
    }


def _insert_source(conn: psycopg.Connection, code: str, point, level: str) -> None:
    """A risk source written in plain SQL, as another system would (a level set directly)."""
    conn.execute(
        "INSERT INTO risk_sources (code, name, category, geom, method, override_level, created_by,"
        " updated_by) VALUES (%s, 'sql', 'gas', ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'direct', %s,"
        " 'sql', 'sql')",
        (code, point[0], point[1], level),
    )


BLUE = {"method": "LEC", "L": 1, "E": 1, "C": 1}  # D = 1
RED = {"method": "LEC", "L": 6, "E": 6, "C": 15}  # D = 540


# -- the same answers as PostGIS ----------------------------------------------------------------


def test_thousands_of_points_byte_for_byte(indexed, city_db_url):
    rng = np.random.default_rng(13)
    _, pieces = _geoms(city_db_url, "cell_pieces")
    minx, miny, maxx, maxy = shapely.total_bounds(pieces)
    pad = 0.02
    random = np.column_stack(
        [rng.uniform(minx - pad, maxx + pad, 3000), rng.uniform(miny - pad, maxy + pad, 3000)]
    )
    # Vertices, midpoints and random points of the pieces' edges: shared by two cells (or more),
    # and by the cuts that split a cell into pieces. The edge rule decides them.
    edges = _edge_points(pieces, rng, 1000)
    _, cities = _geoms(city_db_url, "city_parts")
    outline = _edge_points(cities, rng, 100)  # on the city's edge: inside_city is decided there too
    points = np.vstack([random, edges, outline])
    service = indexed.app.state.cell_lookup
    fallbacks = service.fallbacks
    r = indexed.post("/cells/at", json={"points": points.tolist()})
    assert r.status_code == 200, r.text
    want = _database_says(city_db_url, points)
    assert r.content == b'{"count":%d,"results":[' % len(want) + b",".join(want) + b"]}"
    assert service.fallbacks == fallbacks  # answered from memory
    inside = sum(b'"inside_city" : true' in w for w in want)
    assert 1000 < inside < len(want)  # inside and outside points both exercised


def test_single_points_byte_for_byte(indexed, city_db_url):
    rng = np.random.default_rng(5)
    _, pieces = _geoms(city_db_url, "cell_pieces", None)
    points = _edge_points(pieces, rng, 60).tolist() + [[118.79, 32.05], [100.0, 30.0], [118.8, 32.04]]
    service = indexed.app.state.cell_lookup
    fallbacks = service.fallbacks
    for point, want in zip(points, _database_says(city_db_url, points), strict=True):
        r = indexed.get("/cells/at", params={"lon": point[0], "lat": point[1]})
        if b'"inside_city" : false' in want and b'"code"' not in want:
            assert r.status_code == 404
        else:
            assert r.status_code == 200 and r.content == want
    assert service.fallbacks == fallbacks


def test_query_forms_fastapi_would_take(indexed, city_db_url):
    (_, point), *_ = _interior(city_db_url, "safety", 1)
    lon, lat = point
    (want,) = _database_says(city_db_url, [point])
    for query in (
        f"lon={lon}&lat={lat}",
        f"lat={lat}&lon={lon}",
        f"lon=0&lon={lon}&lat={lat}",  # the last value counts
        f"lon=%2B{lon}&lat={lat}",  # "+118.…", percent-encoded
        f"lon={lon}&lat={lat}&extra=1",
    ):
        r = indexed.get(f"/cells/at?{query}")
        assert r.status_code == 200 and r.content == want, query
    for query, field in (
        ("lat=32", "lon"),
        ("lon=118&lat=", "lat"),
        ("lon=1e3&lat=32", "lon"),
        ("lon=nan&lat=1", "lon"),
    ):
        r = indexed.get(f"/cells/at?{query}")
        assert r.status_code == 422 and field in r.json()["detail"], (query, r.text)


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -0.0,
        1.0,
        100.0,
        118.7969,
        -179.9999999,
        32.06030000000001,
        1e-05,
        1.5e-07,
        0.0001,
        123456.789,
        1e15,
        1.2345678901234567e15,
        2.5e-300,
        1 / 3,
    ],
)
def test_floats_are_written_as_postgresql_writes_them(db_url, value):
    with psycopg.connect(db_url) as conn:
        (text,) = conn.execute("SELECT json_build_object('v', %s::float8)::text", (value,)).fetchone()
    assert text == '{"v" : ' + pg_float(value).decode() + "}"


def test_random_floats_are_written_as_postgresql_writes_them(db_url):
    rng = np.random.default_rng(3)
    # Coordinates, and magnitudes up to 2^53 (beyond it PostgreSQL writes integers in full).
    values = np.concatenate([rng.uniform(-180, 180, 2000), 10.0 ** rng.uniform(-8, 15.9, 500)]).tolist()
    with psycopg.connect(db_url) as conn:
        texts = [t for (t,) in conn.execute("SELECT unnest(%s::float8[])::text", (values,)).fetchall()]
    assert [pg_float(v).decode() for v in values] == texts


# -- as current as PostGIS ----------------------------------------------------------------------


def test_api_write_then_lookup_shows_colour_and_counts(indexed, city_db_url, city_keys):
    (_, point), *_ = _interior(city_db_url, "comprehensive", 1)
    key = bearer(city_keys["operator"])
    before = _at(indexed, point)
    # A blue source changes no colour (no cell_colour event), only counts.
    assert indexed.post("/risk-sources", json=_source("RS-IX-1", point, BLUE), headers=key).status_code == 201
    after_blue = _at(indexed, point)
    assert after_blue != before
    assert after_blue == _database_says(city_db_url, [point])[0]
    r = indexed.post("/risk-sources", json=_source("RS-IX-2", point, RED), headers=key)
    assert r.status_code == 201
    body = indexed.get("/cells/at", params={"lon": point[0], "lat": point[1]}).json()
    assert all(cell["colour"] == "red" for cell in body["cells"].values() if cell)
    assert body["admin"]["district"]["colour"] == "red"
    _same_as_database(indexed, city_db_url, point)
    # Closing it (a soft delete) takes it out again at once.
    assert indexed.delete(f"/risk-sources/{r.json()['id']}", headers=key).status_code in (200, 204)
    assert _at(indexed, point) == after_blue == _database_says(city_db_url, [point])[0]


def test_plain_sql_from_another_connection_shows_at_once(indexed, city_db_url):
    cells = _interior(city_db_url, "safety", 6)
    with psycopg.connect(city_db_url, autocommit=True) as conn:
        for i, (_, point) in enumerate(cells):
            _insert_source(conn, f"RS-SQL-{i}", point, ("blue", "yellow", "orange")[i % 3])
            _same_as_database(indexed, city_db_url, point)
        conn.execute("UPDATE risk_sources SET override_level = 'red' WHERE code = 'RS-SQL-0'")
        _same_as_database(indexed, city_db_url, cells[0][1])
        assert b'"colour" : "red"' in _at(indexed, cells[0][1])
        conn.execute("UPDATE risk_sources SET status = 'closed' WHERE code LIKE 'RS-SQL-%'")
        for _, point in cells:
            _same_as_database(indexed, city_db_url, point)
        # Hazard points count like sources; remediated ones stop counting.
        hx, hy = cells[1][1]
        before = _at(indexed, (hx, hy))
        conn.execute(
            "INSERT INTO hazard_points (code, name, kind, geom, level, created_by, updated_by)"
            " VALUES ('HP-SQL', '积水点', 'waterlogging', ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'orange',"
            " 'sql', 'sql')",
            (hx, hy),
        )
        counted = _at(indexed, (hx, hy))
        assert counted != before
        _same_as_database(indexed, city_db_url, (hx, hy))
        conn.execute("UPDATE hazard_points SET status = 'remediated' WHERE code = 'HP-SQL'")
        assert _at(indexed, (hx, hy)) == before
        _same_as_database(indexed, city_db_url, (hx, hy))


def test_writes_in_another_thread_are_seen_the_moment_they_commit(indexed, city_db_url):
    (_, (x, y)), *_ = _interior(city_db_url, "emergency", 1)
    rng = np.random.default_rng(2)
    committed = threading.Event()
    checked = threading.Event()
    errors: list[str] = []

    def writer():
        with psycopg.connect(city_db_url, autocommit=True) as conn:
            for i in range(25):
                px, py = x + rng.uniform(-2e-4, 2e-4), y + rng.uniform(-2e-4, 2e-4)
                _insert_source(conn, f"RS-W-{i}", (px, py), ("blue", "yellow")[i % 2])
                committed.set()
                if not checked.wait(10):
                    errors.append("reader stuck")
                    return
                checked.clear()

    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(25):
        assert committed.wait(10)
        committed.clear()
        _same_as_database(indexed, city_db_url, (x, y))
        checked.set()
    thread.join()
    assert not errors


def test_pin_shows_at_once(indexed, city_db_url, city_keys):
    (code, point), *_ = _interior(city_db_url, "safety", 1)
    key = bearer(city_keys["operator"])
    r = indexed.post(
        f"/risk-map/safety/cells/{code}/pin", json={"colour": "orange", "reason": "测试"}, headers=key
    )
    assert r.status_code == 200, r.text
    assert (
        indexed.get("/cells/at", params={"lon": point[0], "lat": point[1]}).json()["cells"]["safety"][
            "colour"
        ]
        == "orange"
    )
    _same_as_database(indexed, city_db_url, point)
    indexed.post(f"/risk-map/safety/cells/{code}/unpin", json={"reason": "测试结束"}, headers=key)
    _same_as_database(indexed, city_db_url, point)


def test_threshold_change_recolours_many_cells_at_once(indexed, city_db_url, city_keys):
    rng = np.random.default_rng(8)
    _, pieces = _geoms(city_db_url, "cell_pieces", "comprehensive")
    points = np.array([shapely.get_coordinates(shapely.point_on_surface(g))[0] for g in pieces[::3]])
    new = {
        "red": {"min_score": 30, "min_inclusive": False},
        "orange": {"min_score": 10, "min_inclusive": False},
        "yellow": {"min_score": 2, "min_inclusive": False},
        "reason": "测试",
    }
    r = indexed.put("/risk-map/thresholds/LEC", json=new, headers=bearer(city_keys["admin"]))
    assert r.status_code == 200, r.text
    rng.shuffle(points)
    r = indexed.post("/cells/at", json={"points": points.tolist()})
    want = _database_says(city_db_url, points)
    assert r.content == b'{"count":%d,"results":[' % len(want) + b",".join(want) + b"]}"


def _adjacent(url: str, layer: str) -> tuple[str, str]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT a.code, b.code FROM cells a JOIN cells b ON b.layer = a.layer AND a.code < b.code"
            " AND ST_Intersects(a.geom, b.geom) WHERE a.layer = %s"
            " AND ST_Length(ST_Intersection(a.geom, b.geom)) > 1e-4 ORDER BY a.code, b.code LIMIT 1",
            (layer,),
        ).fetchone()


def _merged(url: str, layer: str, gone: str, keep: str) -> gpd.GeoDataFrame:
    """LAYER with cell GONE merged into KEEP (renamed)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT code, name, population, ST_AsBinary(geom) FROM cells WHERE layer = %s ORDER BY code",
            (layer,),
        ).fetchall()
    gdf = gpd.GeoDataFrame(
        {"code": [r[0] for r in rows], "name": [r[1] for r in rows], "population": [r[2] for r in rows]},
        geometry=shapely.from_wkb([bytes(r[3]) for r in rows]),
        crs=4326,
    )
    i, j = gdf.index[gdf["code"] == gone][0], gdf.index[gdf["code"] == keep][0]
    gdf.loc[j, "geometry"] = shapely.union(gdf.loc[i, "geometry"], gdf.loc[j, "geometry"])
    gdf.loc[j, "name"] = "合并后的网格"
    return gdf.drop(index=i).reset_index(drop=True)


def test_layer_reimport_through_the_api_shows_at_once(indexed, city_db_url, city_keys):
    gone, keep = _adjacent(city_db_url, "emergency")
    (point,) = [p for code, p in _interior(city_db_url, "emergency", 10_000) if code == gone]
    assert f'"code" : "{gone}"'.encode() in _at(indexed, point)
    gdf = _merged(city_db_url, "emergency", gone, keep)
    r = indexed.post(
        "/layers/emergency/import",
        headers=bearer(city_keys["admin"]),
        files={"file": ("grid.geojson", io.BytesIO(gdf.to_json().encode()), "application/geo+json")},
    )
    assert r.status_code == 200, r.text
    body = _at(indexed, point)
    assert f'"code" : "{keep}", "name" : "合并后的网格"'.encode() in body
    _same_as_database(indexed, city_db_url, point)
    service = _ready(indexed)  # the layer reloaded in the background; memory answers again
    assert service.index.layers[service.index.by_name["emergency"]].version == 2
    fallbacks = service.fallbacks
    _same_as_database(indexed, city_db_url, point)
    assert service.fallbacks == fallbacks


def test_layer_reimport_by_the_cli_shows_at_once(indexed, city_db_url, tmp_path, monkeypatch):
    gone, keep = _adjacent(city_db_url, "comprehensive")
    (point,) = [p for code, p in _interior(city_db_url, "comprehensive", 10_000) if code == gone]
    _ = _at(indexed, point)
    path = tmp_path / "comprehensive.geojson"
    path.write_text(_merged(city_db_url, "comprehensive", gone, keep).to_json())
    monkeypatch.setenv("GRIDRISK_DATABASE_URL", city_db_url)
    result = CliRunner().invoke(cli_app, ["grids", "import", "comprehensive", str(path)])
    assert result.exit_code == 0, result.output
    assert f'"code" : "{keep}"'.encode() in _at(indexed, point)
    _same_as_database(indexed, city_db_url, point)


def test_a_worker_started_after_a_change_sees_it(city_db_url):
    (_, point), *_ = _interior(city_db_url, "comprehensive", 1)
    with make_client(city_db_url) as first:
        _ready(first)
        before = _at(first, point)
    with psycopg.connect(city_db_url, autocommit=True) as conn:
        _insert_source(conn, "RS-LATE", point, "red")
    with make_client(city_db_url) as second:
        assert _at(second, point) != before  # at once (the database answers while it loads) …
        service = _ready(second)
        fallbacks = service.fallbacks
        _same_as_database(second, city_db_url, point)  # … and from memory once it has
        assert service.fallbacks == fallbacks


def test_workers_written_by_plain_sql_show_at_once(indexed, city_db_url):
    """cell_workers writes an outbox event like a colour: the very next lookup shows the change."""
    (code, point), *_ = _interior(city_db_url, "safety", 1)
    with psycopg.connect(city_db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO cell_workers (layer, cell_code, name, phone)"
            " VALUES ('safety', %s, '李四', '13800000000')",
            (code,),
        )
        assert '"name" : "李四"'.encode() in _at(indexed, point)
        conn.execute(
            "UPDATE cell_workers SET name = '王五' WHERE layer = 'safety' AND cell_code = %s", (code,)
        )
        assert '"name" : "王五"'.encode() in _at(indexed, point)
        conn.execute("DELETE FROM cell_workers WHERE layer = 'safety' AND cell_code = %s", (code,))
        assert "王五".encode() not in _at(indexed, point)
        event = conn.execute(
            "SELECT payload FROM events WHERE kind = 'cell_workers' ORDER BY id DESC LIMIT 1"
        ).fetchone()[0]
    assert event == {"op": "delete", "count": 1, "cells": [["safety", code]]}
    _ready(indexed)
    fallbacks = indexed.app.state.cell_lookup.fallbacks
    _same_as_database(indexed, city_db_url, point)
    assert indexed.app.state.cell_lookup.fallbacks == fallbacks  # from memory again


def test_a_reset_reloads_everything_and_the_database_answers_meanwhile(indexed, city_db_url):
    (code, point), *_ = _interior(city_db_url, "safety", 1)
    service = indexed.app.state.cell_lookup
    reader = service.reader
    _same_as_database(indexed, city_db_url, point)
    # Counts changed behind every trigger's back: no event tells the index, as with ids the reader
    # lost track of. Its reset must bring them back.
    with psycopg.connect(city_db_url, autocommit=True) as conn:
        conn.execute("UPDATE cell_risk SET n_blue = n_blue + 5 WHERE layer = 'safety' AND code = %s", (code,))
    (want,) = _database_says(city_db_url, [point])
    assert _at(indexed, point) != want  # memory was not told
    loads = service.loads
    indexed.portal.call(service._on_batch, Batch(reader.reads, [], reader.position or 0, reset=True))
    assert _at(indexed, point) == want  # the database answers while everything reloads …
    _ready(indexed)
    assert service.loads > loads
    fallbacks = service.fallbacks
    assert _at(indexed, point) == want  # … then memory, reloaded
    assert service.fallbacks == fallbacks


def test_writes_while_a_layer_reloads_are_not_lost(indexed, city_db_url, city_keys):
    """Another worker re-imports a layer while writes land: the reload and the writes both show."""
    cells = _interior(city_db_url, "safety", 10_000)
    gone, keep = _adjacent(city_db_url, "safety")
    gdf = _merged(city_db_url, "safety", gone, keep)
    done: list[int] = []

    def reimport():
        with make_client(city_db_url) as other:
            r = other.post(
                "/layers/safety/import",
                headers=bearer(city_keys["admin"]),
                files={"file": ("grid.geojson", io.BytesIO(gdf.to_json().encode()), "application/geo+json")},
            )
            done.append(r.status_code)

    thread = threading.Thread(target=reimport)
    thread.start()
    rng = np.random.default_rng(4)
    with psycopg.connect(city_db_url, autocommit=True) as conn:
        for i, k in enumerate(rng.choice(len(cells), 30, replace=False)):
            point = cells[k][1]
            _insert_source(conn, f"RS-RL-{i}", point, ("blue", "yellow", "orange", "red")[i % 4])
            _same_as_database(indexed, city_db_url, point)
    thread.join()
    assert done == [200]
    _ready(indexed)
    points = [p for _, p in cells]
    r = indexed.post("/cells/at", json={"points": points})
    want = _database_says(city_db_url, points)
    assert r.content == b'{"count":%d,"results":[' % len(want) + b",".join(want) + b"]}"


def test_private_reads_check_the_key_before_the_query(city_db_url, city_keys):
    (_, point), *_ = _interior(city_db_url, "safety", 1)
    with make_client(city_db_url, public_read=False) as client:
        assert client.get("/cells/at", params={"lon": point[0], "lat": point[1]}).status_code == 401
        assert client.get("/cells/at", params={"lon": "east", "lat": 32}).status_code == 401  # as before
        r = client.get(
            "/cells/at", params={"lon": point[0], "lat": point[1]}, headers=bearer(city_keys["viewer"])
        )
        assert r.status_code == 200 and r.content == _database_says(city_db_url, [point])[0]
        r = client.get("/cells/at", params={"lon": "east", "lat": 32}, headers=bearer(city_keys["viewer"]))
        assert r.status_code == 422
