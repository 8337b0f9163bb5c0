"""Shelters (应急避难场所): registry, check-ins under concurrency, nearest, coverage, import and demo."""

from __future__ import annotations

import asyncio
import io
import math
import random

import httpx
import numpy as np
import orjson
import psycopg
import pytest
import shapely
import shapely.geometry
from conftest import assert_problem, bearer
from live import live_server
from pyproj import Geod, Transformer

from gridrisk.db.sql_files import sql
from gridrisk.demo.shelters import build_demo_shelters, generate_demo_shelters
from gridrisk.services.shelters import coverage

GEOD = Geod(ellps="WGS84")
TO_4549 = Transformer.from_crs(4326, 4549, always_xy=True)
# In 玄武区 (320102), well inside the small test city.
XUANWU = (118.80, 32.05)


@pytest.fixture(autouse=True)
def _empty_registry(request):
    """Each test starts with no shelters, even if the demo city template comes with demo shelters."""
    if "city_db_url" in request.fixturenames:
        with psycopg.connect(request.getfixturevalue("city_db_url")) as conn:
            conn.execute("TRUNCATE shelters CASCADE")


def _points(url: str, n: int, seed: int = 3) -> list[tuple[float, float]]:
    """N points spread over the test city (uniform by area), the same for the same seed."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ST_X(g), ST_Y(g) FROM (SELECT (ST_Dump(ST_GeneratePoints(ST_Union(geom), %s, %s))).geom g"
            " FROM cells WHERE layer = 'district') p",
            (n, seed),
        ).fetchall()
    return [(float(x), float(y)) for x, y in rows]


def _shelter(code: str, lon: float = XUANWU[0], lat: float = XUANWU[1], **kw) -> dict:
    body = {
        "code": code,
        "name": f"{code} 玄武门广场",
        "class": "emergency",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "total_area_m2": 12000,
        "effective_area_m2": 8000,
        "facilities": ["应急供水", "应急厕所"],
        "address": "南京市玄武区玄武门路 1 号",
        "managing_unit": "玄武区应急管理局",
    }
    body.update(kw)
    return body


def _square(lon: float, lat: float, side_m: float) -> dict:
    """A square polygon SIDE_M metres across, centred on (lon, lat), as GeoJSON."""
    kx = 1 / (111_320 * math.cos(math.radians(lat)))
    ky = 1 / 110_540
    h = side_m / 2
    box = shapely.box(lon - h * kx, lat - h * ky, lon + h * kx, lat + h * ky)
    return shapely.geometry.mapping(box)


def _counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM shelters), (SELECT count(*) FROM shelter_history)"
        ).fetchone()


def _create(client, key: str, body: dict) -> dict:
    r = client.post("/shelters", json=body, headers=bearer(key))
    assert r.status_code == 201, r.text
    return r.json()


def _open(client, key: str, shelter: dict) -> dict:
    r = client.patch(
        f"/shelters/{shelter['id']}",
        json={"status": "open"},
        headers={**bearer(key), "If-Match": f'"{shelter["properties"]["version"]}"'},
    )
    assert r.status_code == 200, r.text
    return r.json()


# ---------------------------------------------------------------------------------------------
# Registry


def test_create_get_patch_close_with_etags_and_history(city_client, city_keys):
    op = city_keys["operator"]
    r = city_client.post("/shelters", json=_shelter("BN-T-1"), headers=bearer(op))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/geo+json")
    assert r.headers["etag"] == '"1"'
    created = r.json()
    sid = created["id"]
    assert r.headers["location"] == f"/shelters/{sid}"
    p = created["properties"]
    assert (p["class"], p["capacity"], p["occupancy"], p["free"], p["status"]) == (
        "emergency",
        8000,
        0,
        8000,
        "standby",
    )
    assert p["district"]["code"] == "320102" and p["facilities"] == ["应急供水", "应急厕所"]
    assert p["total_area_m2"] == 12000 and p["effective_area_m2"] == 8000 and p["warnings"] == []

    got = city_client.get(f"/shelters/{sid}")
    assert got.status_code == 200 and got.headers["etag"] == '"1"' and got.json() == created

    patch = {
        "name": "玄武门广场（扩建）",
        "capacity": 9000,
        "total_area_m2": 14000,
        "facilities": ["应急供水"],
    }
    assert_problem(city_client.patch(f"/shelters/{sid}", json=patch, headers=bearer(op)), 428)
    stale = city_client.patch(f"/shelters/{sid}", json=patch, headers={**bearer(op), "If-Match": '"7"'})
    assert assert_problem(stale, 412)["current_version"] == 1 and stale.headers["etag"] == '"1"'
    r = city_client.patch(f"/shelters/{sid}", json=patch, headers={**bearer(op), "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    p = r.json()["properties"]
    assert (p["name"], p["capacity"], p["total_area_m2"], p["facilities"]) == (
        "玄武门广场（扩建）",
        9000,
        14000,
        ["应急供水"],
    )
    assert p["warnings"] and "9000" in p["warnings"][0]  # more people than 8,000 m² at 1 m² each

    r = city_client.delete(f"/shelters/{sid}", headers={**bearer(op), "If-Match": '"2"'})
    assert r.status_code == 200 and r.json()["properties"]["status"] == "closed"
    assert r.json()["properties"]["free"] == 0
    assert city_client.delete(f"/shelters/{sid}", headers=bearer(op)).headers["etag"] == '"3"'  # idempotent

    history = city_client.get(f"/shelters/{sid}/history").json()
    assert [(h["version"], h["op"]) for h in history] == [(1, "create"), (2, "update"), (3, "close")]
    assert history[1]["changes"]["capacity"] == [8000, 9000]
    assert history[1]["changes"]["name"] == ["BN-T-1 玄武门广场", "玄武门广场（扩建）"]
    assert history[2]["changes"]["status"] == ["standby", "closed"]
    assert_problem(city_client.get("/shelters/999999"), 404)
    assert_problem(city_client.get("/shelters/999999/history"), 404)


def test_writes_need_a_writer_and_codes_are_unique(city_client, city_db_url, city_keys):
    assert_problem(city_client.post("/shelters", json=_shelter("BN-T-2")), 401)
    for role in ("viewer", "worker"):
        assert_problem(
            city_client.post("/shelters", json=_shelter("BN-T-2"), headers=bearer(city_keys[role])), 403
        )
    _create(city_client, city_keys["admin"], _shelter("BN-T-2"))
    again = city_client.post("/shelters", json=_shelter("BN-T-2"), headers=bearer(city_keys["operator"]))
    assert assert_problem(again, 409)["errors"][0]["field"] == "code"
    assert _counts(city_db_url) == (1, 1)


def test_capacity_defaults_to_area_over_the_class_figure(city_client, city_keys):
    op = city_keys["operator"]
    cases = [
        ("emergency", 8000, 8000),
        ("fixed", 9001, 4500),
        ("central", 9000, 2000),
        ("central", 8999, 1999),
    ]
    for i, (cls, area, expected) in enumerate(cases):
        p = _create(city_client, op, _shelter(f"BN-C-{i}", **{"class": cls, "effective_area_m2": area}))[
            "properties"
        ]
        assert p["capacity"] == expected, (cls, area, p)
    given = _create(city_client, op, _shelter("BN-C-9", capacity=1234))
    assert given["properties"]["capacity"] == 1234
    small = _create(city_client, op, _shelter("BN-C-10", effective_area_m2=1500, total_area_m2=None))
    assert small["properties"]["capacity"] == 1500
    assert any("2000" in w for w in small["properties"]["warnings"])  # below the national minimum

    # A derived capacity follows a new area or class; one set by hand stays; null derives it again.
    def patch(shelter_id, version, body):
        r = city_client.patch(
            f"/shelters/{shelter_id}", json=body, headers={**bearer(op), "If-Match": f'"{version}"'}
        )
        assert r.status_code == 200, r.text
        return r.json()["properties"]

    derived = small["id"]
    assert patch(derived, 1, {"effective_area_m2": 6000})["capacity"] == 6000
    assert patch(derived, 2, {"class": "fixed"})["capacity"] == 3000
    assert patch(given["id"], 1, {"effective_area_m2": 500})["capacity"] == 1234
    assert patch(given["id"], 2, {"capacity": None})["capacity"] == 500


BAD = [
    ({"class": "stadium"}, "class"),
    ({"geometry": {"type": "Point", "coordinates": [116.40, 39.90]}}, "geometry"),  # Beijing
    ({"geometry": {"type": "Point", "coordinates": [32.05, 118.80]}}, "geometry.coordinates"),  # lat, lon
    ({"total_area_m2": -5}, "total_area_m2"),
    ({"effective_area_m2": -1}, "effective_area_m2"),
    ({"effective_area_m2": 20000}, "effective_area_m2"),  # above the total area
    ({"effective_area_m2": None}, "effective_area_m2"),  # neither area nor capacity
    ({"capacity": -3}, "capacity"),
    ({"status": "full"}, "status"),
    ({"facilities": "应急供水"}, "facilities"),
    ({"occupancy": 10}, "occupancy"),
    ({"district_code": "999999"}, "district_code"),
    ({"code": "has space"}, "code"),
]


@pytest.mark.parametrize(("change", "field"), BAD, ids=[f for _, f in BAD])
def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    city_client, city_db_url, city_keys, change, field
):
    r = city_client.post(
        "/shelters", json={**_shelter("BN-BAD"), **change}, headers=bearer(city_keys["operator"])
    )
    body = assert_problem(r, 422)
    assert field in {e["field"] for e in body["errors"]}, body
    assert _counts(city_db_url) == (0, 0)


def test_bad_patch_is_422_and_changes_nothing(city_client, city_keys):
    op = city_keys["operator"]
    s = _create(city_client, op, _shelter("BN-P-1"))
    headers = {**bearer(op), "If-Match": '"1"'}
    for body, field in [
        ({"effective_area_m2": 13000}, "effective_area_m2"),  # above the stored total area
        ({"class": "nope"}, "class"),
        ({"name": None}, "name"),
        ({"status": "full"}, "status"),
        ({"geometry": {"type": "Point", "coordinates": [121.47, 31.23]}}, "geometry"),  # Shanghai
    ]:
        body_ = assert_problem(city_client.patch(f"/shelters/{s['id']}", json=body, headers=headers), 422)
        assert field in {e["field"] for e in body_["errors"]}, body_
    after = city_client.get(f"/shelters/{s['id']}")
    assert after.headers["etag"] == '"1"' and after.json() == s


def test_list_filters_and_paging(city_client, city_keys):
    op = city_keys["operator"]
    qinhuai = (118.79, 32.02)
    _create(city_client, op, _shelter("BN-L-1"))
    _create(city_client, op, _shelter("BN-L-2", **{"class": "fixed", "effective_area_m2": 10000}))
    third = _create(city_client, op, _shelter("BN-L-3", *qinhuai, capacity=50))
    fourth = _create(city_client, op, _shelter("BN-L-4", *qinhuai, geometry=_square(*qinhuai, 120)))
    _open(city_client, op, third)
    city_client.delete(f"/shelters/{fourth['id']}", headers=bearer(op))

    def codes(**params):
        fc = city_client.get("/shelters", params=params).json()
        assert fc["numberMatched"] >= len(fc["features"])
        return [f["properties"]["code"] for f in fc["features"]]

    assert codes() == ["BN-L-1", "BN-L-2", "BN-L-3", "BN-L-4"]
    assert codes(**{"class": "fixed"}) == ["BN-L-2"]
    assert codes(status="open") == ["BN-L-3"]
    assert codes(status="closed") == ["BN-L-4"]
    assert codes(district="320104") == ["BN-L-3", "BN-L-4"]
    assert codes(min_free=5000) == ["BN-L-1", "BN-L-2"]  # the closed one has no free place
    assert codes(min_free=50) == ["BN-L-1", "BN-L-2", "BN-L-3"]
    assert codes(bbox="118.78,32.00,118.795,32.03") == ["BN-L-3", "BN-L-4"]
    assert codes(q="L-2") == ["BN-L-2"]
    page = city_client.get("/shelters", params={"limit": 3}).json()
    assert page["numberMatched"] == 4 and page["numberReturned"] == 3
    nxt = next(link["href"] for link in page["links"] if link["rel"] == "next")
    assert [f["properties"]["code"] for f in city_client.get(nxt).json()["features"]] == ["BN-L-4"]
    assert_problem(city_client.get("/shelters", params={"status": "busy"}), 422)
    assert_problem(city_client.get("/shelters", params={"min_free": -1}), 422)


# ---------------------------------------------------------------------------------------------
# Occupancy


def test_occupancy_rules_and_no_version_bump(city_client, city_db_url, city_keys):
    op, worker = city_keys["operator"], city_keys["worker"]
    s = _create(city_client, op, _shelter("BN-O-1", capacity=100))
    url = f"/shelters/{s['id']}/occupancy"
    closed = assert_problem(city_client.post(url, json={"delta": 5}, headers=bearer(worker)), 409)
    assert "open it first" in closed["detail"] and closed["shelter_status"] == "standby"
    opened = _open(city_client, op, s)
    assert opened["properties"]["version"] == 2

    assert_problem(city_client.post(url, json={"delta": 5}, headers=bearer(city_keys["viewer"])), 403)
    for bad in (0, 100_001, -100_001, 2.5, "x"):
        assert "delta" in {
            e["field"]
            for e in assert_problem(city_client.post(url, json={"delta": bad}, headers=bearer(worker)), 422)[
                "errors"
            ]
        }

    r = city_client.post(url, json={"delta": 60}, headers=bearer(worker))
    assert r.status_code == 200 and r.json() == {
        "id": s["id"],
        "code": "BN-O-1",
        "occupancy": 60,
        "capacity": 100,
        "free": 40,
        "status": "open",
        "version": 2,
        "reservation_used": 0,  # walk-ins: no work order named
        "reserved": 0,
    }
    full = assert_problem(city_client.post(url, json={"delta": 41}, headers=bearer(op)), 409)
    assert full["free"] == 40 and full["requested"] == 41
    assert city_client.post(url, json={"delta": 40}, headers=bearer(op)).json()["status"] == "full"
    assert assert_problem(city_client.post(url, json={"delta": 1}, headers=bearer(op)), 409)["free"] == 0
    assert city_client.post(url, json={"delta": -30}, headers=bearer(op)).json()["status"] == "open"
    below = assert_problem(city_client.post(url, json={"delta": -71}, headers=bearer(op)), 409)
    assert below["occupancy"] == 70

    # Check-ins are not versions: the ETag holds and an editor's If-Match still works.
    got = city_client.get(f"/shelters/{s['id']}")
    assert got.headers["etag"] == '"2"' and got.json()["properties"]["occupancy"] == 70
    assert len(city_client.get(f"/shelters/{s['id']}/history").json()) == 2
    headers = {**bearer(op), "If-Match": '"2"'}
    low = assert_problem(
        city_client.patch(f"/shelters/{s['id']}", json={"capacity": 69}, headers=headers), 409
    )
    assert low["occupancy"] == 70 and low["errors"][0]["field"] == "capacity"
    assert_problem(
        city_client.patch(f"/shelters/{s['id']}", json={"status": "standby"}, headers=headers), 409
    )
    assert_problem(city_client.delete(f"/shelters/{s['id']}", headers=bearer(op)), 409)
    r = city_client.patch(f"/shelters/{s['id']}", json={"capacity": 70}, headers=headers)
    assert r.status_code == 200 and r.json()["properties"]["status"] == "full"  # no place left at 70/70
    assert_problem(city_client.post("/shelters/999999/occupancy", json={"delta": 1}, headers=bearer(op)), 404)
    with psycopg.connect(city_db_url) as conn:
        assert conn.execute(
            "SELECT occupancy, status FROM shelters WHERE id = %s", (s["id"],)
        ).fetchone() == (70, "full")


def test_concurrent_check_ins_never_lose_a_count(city_client, city_db_url, city_keys):
    """40 concurrent check-ins of 7 people against capacity 210 (= 30 × 7), through a real server."""
    op, worker = city_keys["operator"], city_keys["worker"]
    a = _open(city_client, op, _create(city_client, op, _shelter("BN-CC-1", capacity=210)))
    b = _open(city_client, op, _create(city_client, op, _shelter("BN-CC-2", capacity=200)))
    etag_a = city_client.get(f"/shelters/{a['id']}").headers["etag"]

    async def run(base: str) -> dict[int, list[int]]:
        async with httpx.AsyncClient(base_url=base, timeout=30, headers=bearer(worker)) as client:

            async def check_in(sid: int) -> int:
                return (await client.post(f"/shelters/{sid}/occupancy", json={"delta": 7})).status_code

            jobs = [check_in(a["id"]) for _ in range(40)] + [check_in(b["id"]) for _ in range(40)]
            random.Random(5).shuffle(jobs)
            codes = await asyncio.gather(*jobs)
        return codes

    with live_server(city_db_url) as base:
        codes = asyncio.run(run(base))
    assert set(codes) <= {200, 409}
    with psycopg.connect(city_db_url) as conn:
        rows = {sid: (occ, st) for sid, occ, st in conn.execute("SELECT id, occupancy, status FROM shelters")}
    successes = codes.count(200)
    assert successes == 30 + 28 and codes.count(409) == 10 + 12
    assert rows[a["id"]] == (210, "full")  # filled exactly: 30 × 7
    assert rows[b["id"]] == (196, "open")  # 28 × 7; a 29th would be 203 > 200
    # An editor who read the shelter before the rush still holds a valid ETag.
    r = city_client.patch(
        f"/shelters/{a['id']}",
        json={"managing_unit": "玄武门街道"},
        headers={**bearer(op), "If-Match": etag_a},
    )
    assert r.status_code == 200 and r.json()["properties"]["occupancy"] == 210


# ---------------------------------------------------------------------------------------------
# Nearest


def _independent_distance(lon: float, lat: float, geometry: dict) -> float:
    """Metres from (lon, lat) to the site: geodesic to a point; EPSG:4549 (CGCS2000 GK) to a polygon."""
    if geometry["type"] == "Point":
        x, y = geometry["coordinates"]
        return GEOD.inv(lon, lat, x, y)[2]
    return _gk(shapely.geometry.shape(geometry)).distance(shapely.Point(*TO_4549.transform(lon, lat)))


def _gk(geom: shapely.Geometry) -> shapely.Geometry:
    """GEOM in EPSG:4549 (metres)."""
    return shapely.transform(geom, lambda xy: np.column_stack(TO_4549.transform(xy[:, 0], xy[:, 1])))


def test_nearest_orders_by_true_distance(city_client, city_db_url, city_keys):
    op = city_keys["operator"]
    pts = _points(city_db_url, 30, seed=11)
    sites = {}
    for i, (x, y) in enumerate(pts):
        geometry = _square(x, y, 150) if i % 3 == 0 else {"type": "Point", "coordinates": [x, y]}
        s = _create(city_client, op, _shelter(f"BN-N-{i:02d}", geometry=geometry, capacity=100 + i))
        sites[s["id"]] = s
        if i % 5 == 1:
            _open(city_client, op, s)
        elif i % 7 == 2:
            city_client.delete(f"/shelters/{s['id']}", headers=bearer(op))
    closed = {
        sid for sid in sites if city_client.get(f"/shelters/{sid}").json()["properties"]["status"] == "closed"
    }
    assert closed

    for lon, lat in _points(city_db_url, 6, seed=77) + [(118.60, 31.90)]:  # the last is outside the city
        r = city_client.get("/shelters/nearest", params={"lon": lon, "lat": lat, "limit": 8})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/geo+json")
        fc = r.json()
        assert fc["inside_city"] is ((lon, lat) != (118.60, 31.90))
        got = [f["id"] for f in fc["features"]]
        expected = sorted(
            (sid for sid in sites if sid not in closed),
            key=lambda sid: _independent_distance(lon, lat, sites[sid]["geometry"]),
        )[:8]
        reported = [f["properties"]["distance_m"] for f in fc["features"]]
        independent = [_independent_distance(lon, lat, sites[sid]["geometry"]) for sid in got]
        assert reported == sorted(reported)
        for rep, ind in zip(reported, independent, strict=True):
            assert abs(rep - ind) <= 0.5 + 1e-3 * ind, (rep, ind)
        # Same order as the independent distances (ties within 0.1% may swap).
        exp_d = [_independent_distance(lon, lat, sites[sid]["geometry"]) for sid in expected]
        assert got == expected or all(abs(a - b) <= 1e-3 * b for a, b in zip(independent, exp_d, strict=True))
        for f in fc["features"]:
            p = f["properties"]
            assert p["free"] == p["capacity"] - p["occupancy"] and p["status"] in ("open", "standby")

    # A full shelter takes nobody: left out by default, listed when asked for.
    lon, lat = XUANWU
    fill = next(sid for sid in sites if sites[sid]["properties"]["code"] == "BN-N-01")
    r = city_client.post(f"/shelters/{fill}/occupancy", json={"delta": 101}, headers=bearer(op))
    assert r.json()["status"] == "full"
    default = city_client.get("/shelters/nearest", params={"lon": lon, "lat": lat, "limit": 100}).json()
    assert fill not in {f["id"] for f in default["features"]}
    assert len(default["features"]) == len(sites) - len(closed) - 1
    full = city_client.get("/shelters/nearest", params={"lon": lon, "lat": lat, "status": "full"}).json()
    assert [f["id"] for f in full["features"]] == [fill] and full["features"][0]["properties"]["free"] == 0
    opened = city_client.get(
        "/shelters/nearest", params={"lon": lon, "lat": lat, "status": "open", "limit": 50}
    ).json()
    assert {f["properties"]["status"] for f in opened["features"]} == {"open"}
    assert len(opened["features"]) == sum(1 for i in range(30) if i % 5 == 1) - 1  # one is full
    both = city_client.get(
        "/shelters/nearest",
        params=[("lon", lon), ("lat", lat), ("status", "closed"), ("status", "open"), ("limit", 100)],
    ).json()
    assert {f["id"] for f in both["features"]} == closed | {f["id"] for f in opened["features"]}
    assert fill not in {f["id"] for f in both["features"]}
    roomy = city_client.get(
        "/shelters/nearest", params={"lon": lon, "lat": lat, "min_free": 125, "limit": 100}
    ).json()
    assert roomy["features"] and all(f["properties"]["free"] >= 125 for f in roomy["features"])
    none = city_client.get("/shelters/nearest", params={"lon": lon, "lat": lat, "class": "central"}).json()
    assert none["features"] == [] and none["numberReturned"] == 0
    for params in (
        {"lon": 190, "lat": 32},
        {"lon": 118.8, "lat": 91},
        {"lat": 32},
        {"lon": 118.8, "lat": 32, "limit": 0},
    ):
        assert_problem(city_client.get("/shelters/nearest", params=params), 422)


def test_nearest_uses_the_geography_index(city_db_url):
    """With a realistic number of shelters the KNN query is an index scan on ix_shelters_geog."""
    with psycopg.connect(city_db_url) as conn:
        conn.execute(
            "INSERT INTO shelters (code, name, class, geom, capacity, status, created_by, updated_by)"
            " SELECT 'BN-X-' || i, 'x', 'emergency',"
            "        ST_SetSRID(ST_MakePoint(118.70 + random() * 0.2, 31.95 + random() * 0.15), 4326),"
            "        1000, CASE WHEN i % 10 = 0 THEN 'closed' ELSE 'standby' END, 't', 't'"
            " FROM generate_series(1, 2000) i"
        )
        conn.execute("ANALYZE shelters")
        params = {
            "lon": 118.80,
            "lat": 32.05,
            "limit": 5,
            "candidates": 20,
            "class": None,
            "statuses": ["open", "standby"],
            "min_free": 0,
        }
        for mode in ("auto", "force_generic_plan"):
            conn.execute(f"SET plan_cache_mode = {mode}")
            plan = "\n".join(
                r[0] for r in conn.execute("EXPLAIN " + sql("shelter_nearest"), params).fetchall()
            )
            assert "Index Scan using ix_shelters_geog" in plan, plan
            # The same query, prepared as the service runs it.
            conn.execute(sql("shelter_nearest"), params, prepare=True).fetchone()


# ---------------------------------------------------------------------------------------------
# Coverage

# A hand-made 4-cell grid in 玄武/秦淮: 1 km squares in a row west → east, A B C D.
CELL_KM = 1.0
ORIGIN = (118.78, 32.045)
POPULATION = {"A": 1000, "B": 3000, "C": 0, "D": 2000}
DISTRICT = {"A": "320102", "B": "320102", "C": "320104", "D": "320104"}


def _grid() -> dict[str, shapely.Polygon]:
    lon0, lat0 = ORIGIN
    kx = 1 / (111_320 * math.cos(math.radians(lat0)))
    ky = 1 / 110_540
    side = CELL_KM * 1000
    return {
        name: shapely.box(lon0 + i * side * kx, lat0, lon0 + (i + 1) * side * kx, lat0 + side * ky)
        for i, name in enumerate("ABCD")
    }


def _make_grid(url: str) -> dict[str, shapely.Polygon]:
    cells = _grid()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO layers (name, kind, title) VALUES ('testgrid', 'grid', 'test grid')")
        for name, poly in cells.items():
            conn.execute(
                "INSERT INTO cells (layer, code, name, geom, area_m2, population, district_code)"
                " VALUES ('testgrid', %s, %s, ST_Multi(ST_GeomFromText(%s, 4326)), 1e6, %s, %s)",
                (name, f"cell {name}", poly.wkt, POPULATION[name], DISTRICT[name]),
            )
    return cells


def _expected_coverage(
    cells: dict[str, shapely.Polygon], shelters: list[dict], radius: dict[str, float]
) -> dict:
    """The rule, computed independently: geodesic centroid distances with pyproj, shares in Python."""
    cap = {c: 0.0 for c in cells}
    for s in shelters:
        if s["status"] == "closed":
            continue
        site = shapely.geometry.shape(s["geometry"])
        reached = []
        for c, poly in cells.items():
            cen = poly.centroid
            if site.geom_type == "Point":
                d = GEOD.inv(site.x, site.y, cen.x, cen.y)[2]
            else:
                d = _gk(site).distance(shapely.Point(*TO_4549.transform(cen.x, cen.y)))
            if d <= radius[s["class"]]:
                reached.append(c)
        total = sum(POPULATION[c] for c in reached)
        for c in reached:
            if total:
                cap[c] += s["capacity"] * POPULATION[c] / total
    return cap


def test_coverage_of_a_hand_made_grid(city_client, city_db_url, city_keys):
    op = city_keys["operator"]
    cells = _make_grid(city_db_url)
    centre = {c: poly.centroid for c, poly in cells.items()}
    east_edge_b = (cells["B"].bounds[2], centre["B"].y)
    specs = [
        # Reaches A only (B's centroid is 1 km away, beyond 500 m).
        _shelter("S1", centre["A"].x, centre["A"].y, capacity=600),
        # On the B|C border: every centroid is within 2.5 km; shares 1:3:0:2 by population.
        _shelter("S2", *east_edge_b, **{"class": "fixed", "capacity": 1200}),
        # Closed: counts nowhere.
        _shelter("S3", centre["D"].x, centre["D"].y, capacity=5000),
        # Reaches C alone, where nobody lives: idle.
        _shelter("S4", centre["C"].x, centre["C"].y, capacity=300),
        # A polygon 100 m east of D's centroid (its west edge 60 m from it): reaches D.
        _shelter(
            "S5",
            centre["D"].x + 0.0011,
            centre["D"].y,
            geometry=_square(centre["D"].x + 0.0011, centre["D"].y, 80),
            capacity=100,
        ),
    ]
    made = [_create(city_client, op, s) for s in specs]
    city_client.delete(f"/shelters/{made[2]['id']}", headers=bearer(op))
    shelters = [
        {**s, "status": city_client.get(f"/shelters/{m['id']}").json()["properties"]["status"]}
        for s, m in zip(specs, made, strict=True)
    ]

    expected = _expected_coverage(cells, shelters, {"emergency": 500, "fixed": 2500, "central": 3990})
    # By hand: A = 600 + 1200/6 = 800; B = 1200/2 = 600; C = 0; D = 1200/3 + 100 = 500.
    assert {c: round(v, 6) for c, v in expected.items()} == {"A": 800, "B": 600, "C": 0, "D": 500}

    report = city_client.get("/shelters/coverage", params={"layer": "testgrid"}).json()
    assert list(report)[:6] == ["layer", "generated_at", "rule", "classes", "city", "districts"]
    by_code = {c["code"]: c for c in report["cells"]}
    for c in cells:
        got = by_code[c]
        assert got["capacity"] == pytest.approx(expected[c], abs=0.05)
        assert got["shortfall"] == round(max(0, POPULATION[c] - expected[c]))
        assert got["ratio"] == (
            None if POPULATION[c] == 0 else pytest.approx(expected[c] / POPULATION[c], abs=1e-4)
        )
    assert [c["code"] for c in report["cells"]] == ["B", "D", "A", "C"]  # worst shortfall first
    assert by_code["A"]["by_class"] == {"central": 0, "emergency": 600, "fixed": 200}
    ids = {s["code"]: m["id"] for s, m in zip(specs, made, strict=True)}
    assert by_code["C"]["shelters"] == sorted([ids["S2"], ids["S4"]])

    city = report["city"]
    assert (city["population"], city["capacity"], city["shortfall"]) == (6000, 1900, 200 + 2400 + 1500)
    # Sum of the cells' capacities = capacities of the shelters that reach someone.
    assert city["capacity"] == 600 + 1200 + 100
    assert city["by_class"]["fixed"]["capacity"] == 1200 and city["by_class"]["fixed"]["ratio"] == 0.2
    assert (city["idle_shelters"], city["idle_capacity"], city["idle_shelter_codes"]) == (1, 300, ["S4"])
    assert (city["cells_unreached"], city["shelters_closed"]) == (0, 1)
    districts = {d["code"]: d for d in report["districts"]}
    assert districts["320102"]["capacity"] == 1400 and districts["320102"]["shortfall"] == 2600
    assert districts["320104"]["capacity"] == 500 and districts["320104"]["name"] == "秦淮区"
    assert sum(d["capacity"] for d in report["districts"]) == pytest.approx(city["capacity"])

    # The GeoJSON variant carries the same figures with each cell's outline; the CLI's function too.
    fc = city_client.get("/shelters/coverage.geojson", params={"layer": "testgrid"}).json()
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == 4
    for f in fc["features"]:
        assert f["properties"]["capacity"] == by_code[f["id"]]["capacity"]
        assert shapely.geometry.shape(f["geometry"]).equals_exact(
            shapely.MultiPolygon([cells[f["id"]]]), 1e-6
        )
    with psycopg.connect(city_db_url) as conn:
        sync = coverage(conn, "testgrid")
    assert sync["city"] == city and sync["cells"] == report["cells"]
    assert (
        city_client.get("/shelters/coverage", params={"layer": "testgrid", "cells": "false"}).json()["cells"]
        is None
    )
    assert_problem(city_client.get("/shelters/coverage", params={"layer": "nolayer"}), 404)
    with psycopg.connect(city_db_url) as conn, pytest.raises(LookupError):
        coverage(conn, "nolayer")


def test_coverage_totals_add_up_on_the_demo_shelters(city_client, city_db_url):
    with psycopg.connect(city_db_url) as conn:
        build_demo_shelters(conn, seed=3)
        open_capacity = conn.execute(
            "SELECT sum(capacity) FROM shelters WHERE status <> 'closed'"
        ).fetchone()[0]
    report = city_client.get("/shelters/coverage").json()
    city = report["city"]
    cells = report["cells"]
    assert city["cells"] == len(cells) and city["population"] == sum(c["population"] for c in cells)
    assert sum(c["capacity"] for c in cells) == pytest.approx(city["capacity"], abs=0.05 * len(cells))
    assert city["capacity"] + city["idle_capacity"] == pytest.approx(open_capacity, abs=1)
    assert sum(v["capacity"] for v in city["by_class"].values()) == pytest.approx(city["capacity"], abs=1)
    assert [c["shortfall"] for c in cells] == sorted((c["shortfall"] for c in cells), reverse=True)
    for c in cells:
        # Shortfall in whole persons, from the unrounded capacity (the reported one has 1 decimal).
        assert abs(c["shortfall"] - max(0, c["population"] - c["capacity"])) <= 0.55
        assert bool(c["shelters"]) or c["capacity"] == 0


# ---------------------------------------------------------------------------------------------
# Import


CSV = """code,name,class,lon,lat,total_area_m2,effective_area_m2,capacity,status,facilities,address
BN-I-1,锁金村小学,emergency,118.805,32.075,9000,6000,,standby,应急供水;应急厕所,玄武区锁金村路 1 号
BN-I-2,玄武湖公园,central,118.795,32.070,300000,180000,,,应急指挥、医疗救护,玄武区玄武巷 1 号
BN-I-3,月牙湖广场,emergency,118.820,32.030,5000,,4000,open,,秦淮区月牙湖
"""


def _upload(client, key: str, content: str | bytes, name: str = "shelters.csv"):
    data = content.encode() if isinstance(content, str) else content
    return client.post("/shelters/import", files={"file": (name, io.BytesIO(data))}, headers=bearer(key))


def test_csv_import_upserts_by_code_all_or_nothing(city_client, city_db_url, city_keys):
    op = city_keys["operator"]
    r = _upload(city_client, op, CSV)
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("rows", "inserted", "updated", "unchanged")} == {
        "rows": 3,
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
    }
    fc = city_client.get("/shelters").json()
    props = {f["properties"]["code"]: f["properties"] for f in fc["features"]}
    assert props["BN-I-1"]["capacity"] == 6000 and props["BN-I-1"]["facilities"] == ["应急供水", "应急厕所"]
    assert props["BN-I-2"]["capacity"] == 40000 and props["BN-I-2"]["status"] == "standby"
    assert props["BN-I-2"]["district"]["code"] == "320102"
    assert (props["BN-I-3"]["capacity"], props["BN-I-3"]["status"]) == (4000, "open")
    assert props["BN-I-3"]["district"]["code"] == "320104"

    # People checked in survive a re-import; a status left out is kept; unchanged rows are not versions.
    sid3 = next(f["id"] for f in fc["features"] if f["properties"]["code"] == "BN-I-3")
    assert (
        city_client.post(f"/shelters/{sid3}/occupancy", json={"delta": 3990}, headers=bearer(op)).status_code
        == 200
    )
    again = CSV.replace("月牙湖广场", "月牙湖文化广场").replace(",4000,open,", ",4000,,")
    r = _upload(city_client, op, again)
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (0, 1, 2), r.text
    p3 = city_client.get(f"/shelters/{sid3}").json()["properties"]
    assert (p3["name"], p3["occupancy"], p3["status"], p3["version"]) == ("月牙湖文化广场", 3990, "open", 2)

    before = _counts(city_db_url)
    bad = (
        CSV.replace("BN-I-1,锁金村小学,emergency", "BN-I-1,锁金村小学,stadium")
        .replace("118.795,32.070", "121.47,31.23")  # Shanghai
        .replace(",5000,,4000,open,", ",5000,,3000,open,")  # below the 3,990 checked in
        + "BN-I-4,新街口广场,emergency,118.78,abc,,,100,,,\n"
        + "BN-I-5,大行宫广场,emergency,118.79,32.04,100,200,,,,\n"
    )
    r = _upload(city_client, op, bad)
    body = assert_problem(r, 422)
    errors = {(e["row"], e["field"]) for e in body["report"]["errors"]}
    assert errors == {(1, "class"), (2, "location"), (3, "capacity"), (4, "lat"), (5, "effective_area_m2")}, (
        body
    )
    assert all(e["line"] == e["row"] + 1 for e in body["report"]["errors"])
    assert _counts(city_db_url) == before
    assert city_client.get(f"/shelters/{sid3}").json()["properties"]["capacity"] == 4000

    dup = assert_problem(_upload(city_client, op, CSV + CSV.splitlines()[1] + "\n"), 422)
    assert {(e["row"], e["field"]) for e in dup["report"]["errors"]} == {(4, "code")}
    assert_problem(_upload(city_client, op, "code,name\nA,b\n"), 422)
    assert_problem(_upload(city_client, op, CSV, name="shelters.pdf"), 415)
    # A CSV named as a workbook is read as one, and said to be no workbook.
    body = assert_problem(_upload(city_client, op, CSV, name="shelters.xlsx"), 422)
    assert "not a readable Excel workbook" in body["report"]["errors"][0]["problem"]
    assert_problem(_upload(city_client, city_keys["viewer"], CSV), 403)


def test_geojson_export_reads_back_unchanged(city_client, city_keys):
    op = city_keys["operator"]
    _create(city_client, op, _shelter("BN-G-1"))
    poly = _create(
        city_client, op, _shelter("BN-G-2", geometry=_square(118.79, 32.02, 200), **{"class": "fixed"})
    )
    _open(city_client, op, poly)
    exported = city_client.get("/shelters").content
    r = _upload(city_client, op, exported, name="export.geojson")
    assert r.status_code == 200 and (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (
        0,
        0,
        2,
    ), r.text

    # Another CRS named by the file is converted: CGCS2000 / 3-degree GK CM 120E (EPSG:4549).
    x, y = TO_4549.transform(118.81, 32.06)
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4549"}},
        "features": [
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [x, y]},
                "properties": {
                    "code": "BN-G-3",
                    "name": "红山广场",
                    "class": "emergency",
                    "effective_area_m2": 2500,
                },
            }
        ],
    }
    assert _upload(city_client, op, orjson.dumps(doc), name="gk.geojson").json()["inserted"] == 1
    got = next(f for f in city_client.get("/shelters", params={"q": "BN-G-3"}).json()["features"])
    assert got["geometry"]["coordinates"] == pytest.approx([118.81, 32.06], abs=1e-7)


# ---------------------------------------------------------------------------------------------
# Demo


def test_demo_shelters_are_deterministic_inside_and_sized(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        first = generate_demo_shelters(conn, seed=9)
        assert [(r["code"], r["geom"].wkt, r["capacity"]) for r in generate_demo_shelters(conn, seed=9)] == [
            (r["code"], r["geom"].wkt, r["capacity"]) for r in first
        ]
        summary = build_demo_shelters(conn, seed=9)
        assert build_demo_shelters(conn, seed=9)["skipped"] is True
        pop = float(
            conn.execute("SELECT sum(population) FROM cells WHERE layer = 'comprehensive'").fetchone()[0]
        )
        share = pop / 9_310_000
        rows = conn.execute(
            "SELECT s.class, s.effective_area_m2, s.capacity, s.status, s.district_code, s.name,"
            " (SELECT d.code FROM cells d WHERE d.layer = 'district'"
            "  AND ST_Intersects(d.geom, ST_Centroid(s.geom)) ORDER BY d.code LIMIT 1),"
            " EXISTS (SELECT 1 FROM city_parts p WHERE ST_Intersects(p.geom, s.geom))"
            " FROM shelters s"
        ).fetchall()
    assert summary["shelters"] == len(rows) == len(first)
    n = {c: sum(1 for r in rows if r[0] == c) for c in ("central", "fixed", "emergency")}
    assert n == {
        "central": max(1, round(8 * share)),
        "fixed": max(1, round(45 * share)),
        "emergency": round(260 * share),
    }
    big = sum(r[1] for r in rows if r[0] != "emergency")
    assert big == pytest.approx(2_140_000 * share, abs=2)
    assert sum(r[2] for r in rows if r[0] == "emergency") == pytest.approx(7_000_000 * share, abs=2)
    m2 = {"emergency": 1, "fixed": 2, "central": 4.5}
    assert all(r[2] == math.floor(r[1] / m2[r[0]] + 1e-9) for r in rows)
    assert all(r[4] == r[6] and r[7] for r in rows)  # district from the site; inside the city
    statuses = [r[3] for r in rows]
    assert set(statuses) <= {"standby", "open", "closed"} and statuses.count("standby") > 0.8 * len(rows)
    assert len({r[5] for r in rows}) == len(rows)  # unique names


def test_a_dry_run_reports_the_import_and_writes_nothing(city_client, city_db_url, city_keys):
    """Every check of the real import (database ones included), its counts, and no row, history or event."""

    def state():
        with psycopg.connect(city_db_url) as conn:
            return conn.execute(
                "SELECT (SELECT count(*) FROM shelters), (SELECT count(*) FROM shelter_history),"
                " (SELECT coalesce(max(id), 0) FROM events)"
            ).fetchone()

    before = state()
    r = city_client.post(
        "/shelters/import",
        files={"file": ("shelters.csv", io.BytesIO(CSV.encode()))},
        data={"dry_run": "true"},
        headers=bearer(city_keys["operator"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"] is True and r.json()["inserted"] == 3
    assert state() == before
    bad = CSV.replace("6000", "-5", 1)
    r = city_client.post(
        "/shelters/import",
        files={"file": ("shelters.csv", io.BytesIO(bad.encode()))},
        data={"dry_run": "true"},
        headers=bearer(city_keys["operator"]),
    )
    assert_problem(r, 422)
    assert r.json()["report"]["errors"] and state() == before


@pytest.mark.parametrize("system", ["GCJ-02", "BD-09"])
def test_coordinates_picked_on_chinese_web_maps_are_converted_on_import(
    city_client, city_db_url, city_keys, system
):
    """A register whose lon/lat were picked on Amap (GCJ-02) or Baidu (BD-09) lands where it really is."""
    from gridrisk.geometry.gcj02 import gcj02_to_bd09, wgs84_to_gcj02

    true_lon, true_lat = 118.805, 32.075
    lon, lat = wgs84_to_gcj02(true_lon, true_lat)
    if system == "BD-09":
        lon, lat = gcj02_to_bd09(lon, lat)
    csv = (
        "code,name,class,lon,lat,total_area_m2,effective_area_m2,capacity,status,facilities,address\n"
        f"MAP-1,锁金村小学,emergency,{float(lon):.8f},{float(lat):.8f},9000,6000,,standby,,玄武区\n"
    )
    r = city_client.post(
        "/shelters/import",
        files={"file": ("shelters.csv", io.BytesIO(csv.encode()))},
        data={"coordinates": system},
        headers=bearer(city_keys["operator"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["coordinates"] == f"{system} (converted to WGS 84)"
    with psycopg.connect(city_db_url) as conn:
        x, y = conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM shelters WHERE code = 'MAP-1'").fetchone()
    assert abs(x - true_lon) < 1e-6 and abs(y - true_lat) < 1e-6  # about 10 cm; unconverted: 500-1,200 m off
    r = city_client.post(
        "/shelters/import",
        files={"file": ("shelters.csv", io.BytesIO(csv.encode()))},
        data={"coordinates": "WGS-84-ish"},
        headers=bearer(city_keys["operator"]),
    )
    assert_problem(r, 422)
