"""Vector tiles: MVT content against the database, TileJSON, HTTP caching, and a cache never stale."""

from __future__ import annotations

import asyncio
import json
import math

import httpx
import mapbox_vector_tile
import psycopg
import pytest
from conftest import assert_problem, bearer, make_client
from live import live_server
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from gridrisk.events.outbox import OutboxEvent, OutboxReader
from gridrisk.tiles.cache import CachedTile, TileCache, TileService, changes_of
from gridrisk.tiles.mvt import (
    BUFFER_FRACTION,
    COLLECTIONS,
    lonlat_to_tile_fraction,
    tile_bounds,
    tile_range,
)

MVT = "application/vnd.mapbox-vector-tile"
Z = 14

INSERT_SOURCE = (
    "INSERT INTO risk_sources (code, name, category, geom, method, l, e, c, created_by, updated_by)"
    " VALUES (%s, 'raw source', 'gas', ST_SetSRID(ST_MakePoint(%s, %s), 4326), 'LEC', 6, 6, 15, 'sql', 'sql')"
    " RETURNING id"
)


def tile_of(lon: float, lat: float, z: int = Z) -> tuple[int, int, int]:
    fx, fy = lonlat_to_tile_fraction(lon, lat, z)
    return z, int(fx), int(fy)


def url(collection: str, t: tuple[int, int, int]) -> str:
    return f"/tiles/{collection}/{t[0]}/{t[1]}/{t[2]}.mvt"


def decode(body: bytes, layer: str) -> dict[int, dict]:
    """The tile's features of LAYER by MVT feature id."""
    tile = mapbox_vector_tile.decode(body)
    assert set(tile) == {layer}, tile.keys()
    assert tile[layer]["extent"] == 4096
    return {f["id"]: f for f in tile[layer]["features"]}


def blue_cells(db_url: str, layer: str = "safety") -> list[dict]:
    """Cells of LAYER still blue, with an interior point and their district, in code order."""
    with psycopg.connect(db_url) as conn:
        cur = conn.execute(
            "SELECT c.id, c.code, ST_X(p) AS lon, ST_Y(p) AS lat, c.district_code FROM cells c"
            " JOIN cell_risk r ON r.cell_id = c.id,"
            " LATERAL ST_PointOnSurface(c.geom) p"
            " WHERE c.layer = %s AND r.colour = 'blue' ORDER BY c.code",
            (layer,),
        )
        return [
            dict(zip(("id", "code", "lon", "lat", "district"), row, strict=True)) for row in cur.fetchall()
        ]


def far_apart(cells: list[dict], z: int = Z, *, other_district: bool = False) -> tuple[dict, dict]:
    """Two cells whose tiles at Z are at least three tiles apart (no buffer can reach across).

    OTHER_DISTRICT: also in different districts, so that writes in both never wait on one
    another's locks (a source recolours its cell in every layer, the district layer too).
    """
    first = cells[0]
    t0 = tile_of(first["lon"], first["lat"], z)
    for other in cells[1:]:
        t1 = tile_of(other["lon"], other["lat"], z)
        if other_district and other["district"] == first["district"]:
            continue
        if max(abs(t0[1] - t1[1]), abs(t0[2] - t1[2])) >= 3:
            return first, other
    raise AssertionError("no two cells far enough apart in the test city")


def warm(client, path: str) -> None:
    """Request PATH until this worker's cache holds it (the first reads settle the change feed)."""
    for _ in range(5):
        r = client.get(path)
        assert r.status_code in (200, 204), r.text
        if r.headers["x-tile-cache"] == "hit":
            return
    raise AssertionError(f"{path} never became a cache hit")


# ---------------------------------------------------------------------------------------------
# Content


def test_grid_tile_matches_the_database(city_client, city_db_url):
    cell = blue_cells(city_db_url)[0]
    t = tile_of(cell["lon"], cell["lat"])
    r = city_client.get(url("safety", t))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    features = decode(r.content, "safety")
    west, south, east, north = tile_bounds(*t)
    with psycopg.connect(city_db_url) as conn:
        rows = conn.execute(
            "SELECT c.id, c.code, c.name, r.colour, c.district_code,"
            " ST_Intersects(c.geom, ST_MakeEnvelope(%(w)s, %(s)s, %(e)s, %(n)s, 4326)) AS inside"
            " FROM cells c JOIN cell_risk r ON r.cell_id = c.id"
            " WHERE c.layer = 'safety'"
            "   AND c.geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => %(m)s), 4326)",
            {
                "w": west,
                "s": south,
                "e": east,
                "n": north,
                "z": t[0],
                "x": t[1],
                "y": t[2],
                "m": BUFFER_FRACTION,
            },
        ).fetchall()
    candidates = {row[0]: row for row in rows}
    # Every cell inside the tile is there; nothing but cells whose box meets the buffered tile.
    assert {row[0] for row in rows if row[5]} <= set(features) <= set(candidates)
    assert cell["id"] in features
    for fid, feature in features.items():
        _, code, name, colour, district, _inside = candidates[fid]
        assert feature["properties"] == {
            "code": code,
            "name": name,
            "colour": colour,
            "district_code": district,
        }
        assert feature["geometry"]["type"] in ("Polygon", "MultiPolygon")
        xs = [p[0] for ring in _rings(feature["geometry"]) for p in ring]
        assert min(xs) >= -64 and max(xs) <= 4096 + 64  # clipped to the buffer


def _rings(geometry: dict) -> list:
    if geometry["type"] == "Polygon":
        return geometry["coordinates"]
    return [ring for poly in geometry["coordinates"] for ring in poly]


def test_point_collections_carry_their_properties(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    cell = blue_cells(city_db_url)[0]
    point = [cell["lon"], cell["lat"]]
    r = city_client.post(
        "/risk-sources",
        json={
            "code": "RS-TILE-1",
            "name": "瓦片测试源",
            "category": "hazardous_chemicals",
            "geometry": {"type": "Point", "coordinates": point},
            "assessment": {"method": "LEC", "L": 6, "E": 6, "C": 15},
        },
        headers=key,
    )
    assert r.status_code == 201, r.text
    source_id = r.json()["id"]
    t = tile_of(*point)
    features = decode(city_client.get(url("risk_sources", t)).content, "risk_sources")
    assert features[source_id]["properties"] == {
        "id": source_id,
        "code": "RS-TILE-1",
        "name": "瓦片测试源",
        "category": "hazardous_chemicals",
        "level": "red",
        "status": "active",
    }
    assert features[source_id]["geometry"]["type"] == "Point"
    # The point lands where it is: tile pixel = fractional tile position × 4096 (y from the north).
    fx, fy = lonlat_to_tile_fraction(*point, Z)
    px, py = features[source_id]["geometry"]["coordinates"]
    assert abs(px - (fx - t[1]) * 4096) <= 1
    assert abs((4096 - py) - (fy - t[2]) * 4096) <= 1  # the decoder counts y from the south

    with psycopg.connect(city_db_url) as conn:
        shelter = conn.execute(
            "INSERT INTO shelters (code, name, class, geom, capacity, occupancy, status, created_by,"
            " updated_by) VALUES ('SH-T', '测试避难所', 'emergency', ST_SetSRID(ST_MakePoint(%s, %s), 4326),"
            " 800, 12, 'open', 't', 't') RETURNING id, code, name, class, capacity, occupancy, status",
            point,
        ).fetchone()
        hazard = conn.execute(
            "INSERT INTO hazard_points (code, name, kind, geom, level, threatened_persons, created_by,"
            " updated_by) VALUES ('HZ-T', '测试隐患点', 'landslide', ST_SetSRID(ST_MakePoint(%s, %s), 4326),"
            " 'orange', 40, 't', 't') RETURNING id, code, name, kind, level, status, threatened_persons",
            point,
        ).fetchone()
    got = decode(city_client.get(url("shelters", t)).content, "shelters")
    assert got[shelter[0]]["properties"] == dict(
        zip(("id", "code", "name", "class", "capacity", "occupancy", "status"), shelter[:7], strict=True)
    )
    got = decode(city_client.get(url("hazard_points", t)).content, "hazard_points")
    assert got[hazard[0]]["properties"] == dict(
        zip(("id", "code", "name", "kind", "level", "status", "threatened_persons"), hazard[:7], strict=True)
    )


def test_districts_simplified_by_zoom(city_client, city_db_url):
    with psycopg.connect(city_db_url) as conn:
        code, npoints, *box = conn.execute(
            "SELECT code, ST_NPoints(geom), ST_XMin(geom), ST_YMin(geom), ST_XMax(geom), ST_YMax(geom)"
            " FROM cells WHERE layer = 'district' ORDER BY code LIMIT 1"
        ).fetchone()
    vertices = {}
    for z in (8, 12):
        x0, y0, x1, y1 = tile_range(tuple(box), z)
        vertices[z] = 0
        for x in range(x0, x1 + 1):
            for y in range(y0, y1 + 1):
                r = city_client.get(url("districts", (z, x, y)))
                if r.status_code == 204:
                    continue
                for f in decode(r.content, "districts").values():
                    assert set(f["properties"]) == {"code", "name"}
                    if f["properties"]["code"] == code:
                        vertices[z] += sum(len(ring) for ring in _rings(f["geometry"]))
    # Drawn whole at z8 (a few hundred pixels across) it needs far fewer vertices than at z12.
    assert 4 <= vertices[8] < vertices[12] / 2 and vertices[8] < npoints / 2, (vertices, npoints)


def test_empty_tile_is_204(city_client):
    r = city_client.get("/tiles/safety/14/0/0.mvt")
    assert r.status_code == 204 and r.content == b""
    assert r.headers["etag"] and r.headers["cache-control"] == "no-cache"


# ---------------------------------------------------------------------------------------------
# HTTP


def test_etag_and_304(city_client, city_db_url):
    cell = blue_cells(city_db_url)[0]
    path = url("safety", tile_of(cell["lon"], cell["lat"]))
    first = city_client.get(path)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "no-cache"
    assert etag.startswith('"') and city_client.get(path).headers["etag"] == etag
    r = city_client.get(path, headers={"If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    assert city_client.get(path, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert city_client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_private_cache_control_when_reads_need_a_key(city_db_url, city_keys):
    with make_client(city_db_url, public_read=False) as client:
        assert_problem(client.get("/tiles/safety/14/0/0.mvt"), 401)
        r = client.get("/tiles/safety/14/0/0.mvt", headers=bearer(city_keys["viewer"]))
        assert r.status_code == 204 and r.headers["cache-control"] == "private, no-cache"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/tiles/safety/23/0/0.mvt", 404),
        ("/tiles/safety/-1/0/0.mvt", 404),
        ("/tiles/safety/10/1024/0.mvt", 404),
        ("/tiles/safety/10/0/1024.mvt", 404),
        ("/tiles/safety/10/-1/0.mvt", 404),
        ("/tiles/safety/3/6/3.mvt", 404),  # below the grid's minzoom
        ("/tiles/nowhere/10/0/0.mvt", 404),
        ("/tiles/safety/1.5/0/0.mvt", 422),
        ("/tiles/safety/10/x/0.mvt", 422),
        ("/tiles/nowhere.json", 404),
    ],
)
def test_bad_tiles(city_client, path, status):
    body = assert_problem(city_client.get(path), status)
    if status == 404:
        assert "tile" in body["detail"].lower()


def test_tilejson(city_client, city_db_url):
    with psycopg.connect(city_db_url) as conn:
        extent = conn.execute(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)"
            " FROM (SELECT ST_Extent(geom) e FROM cells WHERE layer = 'safety') x"
        ).fetchone()
    r = city_client.get("/tiles/safety.json")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["http://testserver/tiles/safety/{z}/{x}/{y}.mvt"]
    assert doc["bounds"] == pytest.approx(list(extent), abs=1e-6)
    assert (doc["minzoom"], doc["maxzoom"]) == (8, 16)
    assert doc["bounds"][0] <= doc["center"][0] <= doc["bounds"][2]
    (layer,) = doc["vector_layers"]
    assert layer["id"] == "safety" and set(layer["fields"]) == {"code", "name", "colour", "district_code"}
    points = city_client.get("/tiles/risk_sources.json").json()["vector_layers"][0]
    assert set(points["fields"]) == {"id", "code", "name", "category", "level", "status"}
    for cid in COLLECTIONS:
        assert city_client.get(f"/tiles/{cid}.json").json()["vector_layers"][0]["id"] == cid
    etag = r.headers["etag"]
    assert city_client.get("/tiles/safety.json", headers={"If-None-Match": etag}).status_code == 304


# ---------------------------------------------------------------------------------------------
# Never stale


def test_api_write_evicts_exactly_the_tiles_over_the_change(city_client, city_db_url, city_keys):
    cell, far = far_apart(blue_cells(city_db_url))
    here, there = tile_of(cell["lon"], cell["lat"]), tile_of(far["lon"], far["lat"])
    parent = tile_of(cell["lon"], cell["lat"], 11)
    for path in (url("safety", here), url("safety", there), url("safety", parent), url("emergency", there)):
        warm(city_client, path)
    assert (
        decode(city_client.get(url("safety", here)).content, "safety")[cell["id"]]["properties"]["colour"]
        == "blue"
    )

    r = city_client.post(
        "/risk-sources",
        json={
            "code": "RS-TILE-2",
            "name": "red one",
            "category": "hazardous_chemicals",
            "geometry": {"type": "Point", "coordinates": [cell["lon"], cell["lat"]]},
            "assessment": {"method": "LEC", "L": 6, "E": 6, "C": 15},
        },
        headers=bearer(city_keys["operator"]),
    )
    assert r.status_code == 201, r.text

    r = city_client.get(url("safety", here))
    assert r.headers["x-tile-cache"] == "miss"
    assert decode(r.content, "safety")[cell["id"]]["properties"]["colour"] == "red"
    r = city_client.get(url("safety", parent))
    assert r.headers["x-tile-cache"] == "miss"
    assert decode(r.content, "safety")[cell["id"]]["properties"]["colour"] == "red"
    # Unrelated tiles were kept.
    assert city_client.get(url("safety", there)).headers["x-tile-cache"] == "hit"
    assert city_client.get(url("emergency", there)).headers["x-tile-cache"] == "hit"
    # And the fresh tile is cached again.
    assert city_client.get(url("safety", here)).headers["x-tile-cache"] == "hit"


def test_raw_sql_write_in_another_connection(city_client, city_db_url):
    cell, far = far_apart(blue_cells(city_db_url))
    here, there = (
        url("safety", tile_of(cell["lon"], cell["lat"])),
        url("safety", tile_of(far["lon"], far["lat"])),
    )
    warm(city_client, here)
    warm(city_client, there)
    etag = city_client.get(here).headers["etag"]
    with psycopg.connect(city_db_url) as conn:
        conn.execute(INSERT_SOURCE, ("RAW-1", cell["lon"], cell["lat"]))
    r = city_client.get(here, headers={"If-None-Match": etag})
    assert r.status_code == 200 and r.headers["etag"] != etag and r.headers["x-tile-cache"] == "miss"
    assert decode(r.content, "safety")[cell["id"]]["properties"]["colour"] == "red"
    assert city_client.get(there).headers["x-tile-cache"] == "hit"


def test_feature_move_changes_the_old_and_the_new_tile(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    a, b = far_apart(blue_cells(city_db_url))
    old, new = (
        url("risk_sources", tile_of(a["lon"], a["lat"])),
        url("risk_sources", tile_of(b["lon"], b["lat"])),
    )
    r = city_client.post(
        "/risk-sources",
        json={
            "code": "RS-MOVE",
            "name": "mover",
            "category": "hazardous_chemicals",
            "geometry": {"type": "Point", "coordinates": [a["lon"], a["lat"]]},
            "assessment": {"method": "LEC", "L": 6, "E": 6, "C": 15},
        },
        headers=key,
    )
    source_id = r.json()["id"]
    warm(city_client, old)
    warm(city_client, new)
    assert source_id in decode(city_client.get(old).content, "risk_sources")
    r = city_client.patch(
        f"/risk-sources/{source_id}",
        json={"geometry": {"type": "Point", "coordinates": [b["lon"], b["lat"]]}},
        headers={**key, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    r_old, r_new = city_client.get(old), city_client.get(new)
    assert r_old.headers["x-tile-cache"] == "miss" and r_new.headers["x-tile-cache"] == "miss"
    assert source_id not in (decode(r_old.content, "risk_sources") if r_old.status_code == 200 else {})
    assert source_id in decode(r_new.content, "risk_sources")
    # The grid tiles follow: the old cell back to blue, the new one red.
    assert (
        decode(city_client.get(url("safety", tile_of(b["lon"], b["lat"]))).content, "safety")[b["id"]][
            "properties"
        ]["colour"]
        == "red"
    )


def test_layer_change_drops_that_layer_and_district_change_drops_every_grid(city_client, city_db_url):
    cell = blue_cells(city_db_url)[0]
    t = tile_of(cell["lon"], cell["lat"])
    paths = {c: url(c, t) for c in ("safety", "emergency", "districts", "shelters")}
    for path in paths.values():
        warm(city_client, path)
    with psycopg.connect(city_db_url) as conn:
        conn.execute("UPDATE layers SET version = version + 1 WHERE name = 'safety'")
    state = {c: city_client.get(p).headers["x-tile-cache"] for c, p in paths.items()}
    assert state == {"safety": "miss", "emergency": "hit", "districts": "hit", "shelters": "hit"}
    with psycopg.connect(city_db_url) as conn:
        conn.execute("UPDATE layers SET version = version + 1 WHERE name = 'district'")
    state = {c: city_client.get(p).headers["x-tile-cache"] for c, p in paths.items()}
    assert state == {"safety": "miss", "emergency": "miss", "districts": "miss", "shelters": "hit"}


def test_an_id_that_commits_late_still_evicts(city_client, city_db_url):
    """Event ids commit out of order: id n+1 visible first, id n later; the cache must not skip n."""
    cell, far = far_apart(blue_cells(city_db_url), other_district=True)
    here = url("safety", tile_of(cell["lon"], cell["lat"]))
    warm(city_client, here)
    late = psycopg.connect(city_db_url)
    try:
        # Draws the lower event id, then stays open.
        late.execute(INSERT_SOURCE, ("LATE-1", cell["lon"], cell["lat"]))
        with psycopg.connect(city_db_url) as other:  # a higher id, committed first
            other.execute(INSERT_SOURCE, ("EARLY-1", far["lon"], far["lat"]))
        r = city_client.get(here)  # reads past the higher id; the lower one is not visible yet
        assert decode(r.content, "safety")[cell["id"]]["properties"]["colour"] == "blue"
        late.commit()
    finally:
        late.close()
    r = city_client.get(here)
    assert r.headers["x-tile-cache"] == "miss"
    assert decode(r.content, "safety")[cell["id"]]["properties"]["colour"] == "red"


def test_a_writer_open_when_the_cache_starts_is_not_missed(city_db_url):
    """A write in flight when a worker's cache starts commits later: its tiles are evicted then."""
    cell, far = far_apart(blue_cells(city_db_url), other_district=True)
    here = url("safety", tile_of(cell["lon"], cell["lat"]))
    late = psycopg.connect(city_db_url)
    try:
        late.execute(INSERT_SOURCE, ("OPEN-AT-START", cell["lon"], cell["lat"]))
        with psycopg.connect(city_db_url) as other:  # newer ids committed before the cache starts
            other.execute(INSERT_SOURCE, ("BEFORE-START", far["lon"], far["lat"]))
        with make_client(city_db_url) as client:
            warm(client, here)  # the cache starts and stores tiles while the writer is still open
            assert decode(client.get(here).content, "safety")[cell["id"]]["properties"]["colour"] == "blue"
            late.commit()
            r = client.get(here)
            assert r.headers["x-tile-cache"] == "miss"
            assert decode(r.content, "safety")[cell["id"]]["properties"]["colour"] == "red"
    finally:
        late.close()


def test_concurrent_writes_and_reads_end_current(city_db_url):
    """Readers hammering a tile while writers commit: after the last write, the tile shows it."""

    cells = blue_cells(city_db_url)[:6]
    t = tile_of(cells[0]["lon"], cells[0]["lat"])
    mine = [c for c in cells if tile_of(c["lon"], c["lat"]) == t] or cells[:1]

    async def run(base: str) -> None:

        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            stop = asyncio.Event()

            async def reader() -> None:
                while not stop.is_set():
                    r = await client.get(url("safety", t))
                    assert r.status_code == 200

            async def writer(i: int, c: dict) -> None:
                await asyncio.to_thread(_insert, city_db_url, f"CONC-{i}", c["lon"], c["lat"])

            readers = [asyncio.create_task(reader()) for _ in range(4)]
            await asyncio.gather(*(writer(i, c) for i, c in enumerate(mine)))
            stop.set()
            await asyncio.gather(*readers)
            for _ in range(3):  # every later request, cached or not, shows every write
                body = (await client.get(url("safety", t))).content
                colours = {
                    f["properties"]["colour"]
                    for fid, f in decode(body, "safety").items()
                    if fid in {c["id"] for c in mine}
                }
                assert colours == {"red"}

    with live_server(city_db_url) as base:
        asyncio.run(run(base))


def _insert(db_url: str, code: str, lon: float, lat: float) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute(INSERT_SOURCE, (code, lon, lat))


# ---------------------------------------------------------------------------------------------
# Units: tile maths, the byte-bounded LRU, the event → eviction mapping, the feed's gaps


def test_tile_range_covers_every_tile_whose_buffered_envelope_meets_the_box():
    z = 12
    west, south, east, north = tile_bounds(z, 3399, 1662)
    # A point just inside the western neighbour's buffer reach is in both tiles' ranges.
    eps = (east - west) * BUFFER_FRACTION / 2
    x0, _, x1, _ = tile_range((west - eps, (south + north) / 2, west - eps, (south + north) / 2), z)
    assert (x0, x1) == (3398, 3399)
    # Just beyond the buffer: only the neighbour.
    far = (east - west) * BUFFER_FRACTION * 2
    x0, _, x1, _ = tile_range((west - far, (south + north) / 2, west - far, (south + north) / 2), z)
    assert (x0, x1) == (3398, 3398)
    # A box spanning tiles, y grows southwards.
    x0, y0, x1, y1 = tile_range((118.7, 31.9, 118.9, 32.1), z)
    assert x0 < x1 and y0 < y1
    assert tile_bounds(z, x0, y0)[0] <= 118.7 and tile_bounds(z, x1, y1)[2] >= 118.9
    assert all(0 <= v < 2**z for v in (x0, y0, x1, y1))
    assert math.isclose(tile_bounds(0, 0, 0)[3], 85.0511287798, abs_tol=1e-9)


def test_lru_is_bounded_by_bytes_and_evicts_by_box():
    cache = TileCache(max_bytes=40_000)
    for i in range(10):
        assert cache.put(("safety", 14, i, 0), CachedTile.of(bytes(5_000)))
        if i == 5:
            assert cache.get(("safety", 14, 0, 0)) is not None  # used: goes to the back of the queue
    assert cache.bytes <= 40_000 and len(cache) == 7
    assert ("safety", 14, 0, 0) in cache and ("safety", 14, 9, 0) in cache
    assert all(("safety", 14, i, 0) not in cache for i in (1, 2, 3))  # least recently used out first
    assert not cache.put(("safety", 14, 99, 0), CachedTile.of(bytes(30_000)))  # too big for the budget

    cache = TileCache(max_bytes=10_000_000)
    z = 14
    for x in range(13590, 13600):
        for coll in ("safety", "emergency"):
            cache.put((coll, z, x, 6650), CachedTile.of(b"x"))
    west, south, east, north = tile_bounds(z, 13595, 6650)
    centre = ((west + east) / 2, (south + north) / 2)
    assert cache.evict("safety", [(*centre, *centre)], check=1) == 1
    assert ("safety", z, 13595, 6650) not in cache and ("emergency", z, 13595, 6650) in cache
    assert cache.evict("safety", None, check=2) == 9
    assert len(cache) == 10


def _event(kind: str, target: str | None, cell_box: list | None, boxes: list | None) -> OutboxEvent:
    """An outbox event as the reader makes it from an outbox_read.sql row."""
    data = json.dumps({"collection": target, "bbox": boxes} if boxes is not None else {})
    return OutboxEvent.from_row((None, 1, kind, target, target, data, cell_box))


def test_events_map_to_exact_collections_and_boxes():
    box = [118.8, 32.0, 118.81, 32.01]
    rows = [
        _event("cell_colour", "safety", box, None),
        _event("cell_colour", "district", box, None),
        _event("feature_changed", "shelters", None, [box, box]),
        _event("work_order", None, None, None),
    ]
    assert changes_of(rows) == {"safety": [tuple(box)], "shelters": [tuple(box), tuple(box)]}
    assert changes_of([_event("layer_changed", "emergency", None, None)]) == {"emergency": None}
    assert changes_of([_event("layer_changed", "district", None, None)]) == {
        "districts": None,
        "comprehensive": None,
        "emergency": None,
        "safety": None,
    }
    # A colour event whose cell is gone: the whole layer, never nothing.
    assert changes_of([_event("cell_colour", "safety", None, None)]) == {"safety": None}
    # Boxes that are not four numbers each: the whole collection.
    assert changes_of([_event("feature_changed", "shelters", None, [box, [1, 2]])]) == {"shelters": None}


def test_feed_waits_for_a_gap_until_its_writer_ends(city_db_url):
    """The feed asks again for an unseen id while a transaction that may hold it is open."""

    async def run() -> None:

        async with AsyncConnectionPool(
            city_db_url, min_size=1, max_size=2, kwargs={"autocommit": True, "row_factory": dict_row}
        ) as pool:
            reader = OutboxReader(pool)
            cache = TileService(pool, reader, 1_000_000).cache
            await reader.catch_up()
            assert reader.complete_from is not None  # settled by the first read
            key = ("shelters", *tile_of(118.8, 32.0))
            with psycopg.connect(city_db_url) as holder, psycopg.connect(city_db_url) as other:
                # A writer: it has written (so it has a transaction id), then draws the event id.
                holder.execute("SELECT pg_current_xact_id()")
                low = holder.execute("SELECT nextval(pg_get_serial_sequence('events', 'id'))").fetchone()[0]
                other.execute(
                    "INSERT INTO events (kind, payload) VALUES ('feature_changed',"
                    ' \'{"collection": "shelters", "bbox": [[118.8, 32.0, 118.8, 32.0]]}\')'
                )
                other.commit()
                cache.put(key, CachedTile.of(b"x"))
                for _ in range(4):
                    await reader.catch_up()
                assert low in reader.missing  # still open: it may commit
                holder.execute(
                    "INSERT INTO events (id, kind, payload) VALUES (%s, 'feature_changed',"
                    ' \'{"collection": "shelters", "bbox": [[118.8, 32.0, 118.8, 32.0]]}\')',
                    (low,),
                )
                cache.put(key, CachedTile.of(b"y"))  # as if rendered before the commit
                holder.commit()
            await reader.catch_up()
            assert key not in cache and low not in reader.missing
            for _ in range(3):
                await reader.catch_up()
            assert not reader.missing and not reader.watches

    asyncio.run(run())


def _service_test(db_url: str, body) -> None:
    """Run BODY(service) against a TileService with its own pool on DB_URL."""

    async def run() -> None:
        async with AsyncConnectionPool(
            db_url, min_size=1, max_size=4, kwargs={"autocommit": True, "row_factory": dict_row}
        ) as pool:
            await body(TileService(pool, OutboxReader(pool), 1_000_000))

    asyncio.run(run())


def test_a_render_overtaken_by_a_change_is_not_stored(city_db_url):
    cell, far = far_apart(blue_cells(city_db_url))
    t = tile_of(cell["lon"], cell["lat"])
    safety = COLLECTIONS["safety"]

    async def body(service) -> None:
        real_render, go, rendered = service.render, asyncio.Event(), asyncio.Event()

        async def slow_render(*args):
            tile = await real_render(*args)  # rendered now: before the write below
            rendered.set()
            await go.wait()
            return tile

        service.render = slow_render
        await service.reader.catch_up()
        pending = asyncio.create_task(service.tile(safety, *t))
        await rendered.wait()
        await asyncio.to_thread(_insert, city_db_url, "OVERTAKE", cell["lon"], cell["lat"])
        await service.reader.catch_up()  # applies the write (a read after the render began): evicts the tile
        go.set()
        stale, hit = await pending
        assert not hit and decode(stale.body, "safety")[cell["id"]]["properties"]["colour"] == "blue"
        assert ("safety", *t) not in service.cache  # the render predates the write: not kept
        fresh, hit = await service.tile(safety, *t)
        assert not hit and decode(fresh.body, "safety")[cell["id"]]["properties"]["colour"] == "red"
        assert ("safety", *t) in service.cache

    _service_test(city_db_url, body)


def test_concurrent_requests_for_one_tile_share_its_render(city_db_url):
    cell = blue_cells(city_db_url)[0]
    t = tile_of(cell["lon"], cell["lat"])
    safety = COLLECTIONS["safety"]

    async def body(service) -> None:
        real_render, go, started, renders = service.render, asyncio.Event(), asyncio.Event(), []

        async def slow_render(*args):
            renders.append(args)
            started.set()
            await go.wait()
            return await real_render(*args)

        service.render = slow_render
        await service.reader.catch_up()
        first = asyncio.create_task(service.tile(safety, *t))
        await started.wait()
        others = [asyncio.create_task(service.tile(safety, *t)) for _ in range(5)]
        # Each syncs, misses the cache, finds the render in flight untouched and waits for it.
        for _ in range(1000):
            if service.cache.misses == 6:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.01)
        go.set()
        results = await asyncio.gather(first, *others)
        assert len(renders) == 1
        assert len({tile.etag for tile, _ in results}) == 1

    _service_test(city_db_url, body)
