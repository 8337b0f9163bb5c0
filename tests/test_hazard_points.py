"""Hazard points (隐患点): registry, lifecycle, history, stats, demo, and their place on the map."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import Counter

import httpx
import psycopg
import pytest
import shapely
from conftest import assert_problem, bearer
from live import live_server

from gridrisk.demo.hazards import build_demo_hazards, generate_demo_hazards
from gridrisk.models.hazard_points import TRANSITIONS
from gridrisk.services.risk_map import verify
from gridrisk.vocabulary import HAZARD_KINDS as KINDS
from gridrisk.vocabulary import HAZARD_STATUSES as STATUSES
from gridrisk.vocabulary import LEVELS

LAYERS = ("comprehensive", "emergency", "safety", "district")
# A path from `identified` to each status through valid transitions.
PATHS = {
    "identified": [],
    "monitoring": ["monitoring"],
    "remediating": ["monitoring", "remediating"],
    "remediated": ["monitoring", "remediating", "remediated"],
    "closed": ["closed"],
}

# The cells of every hazard point as a from-scratch computation would assign them (verify() checks
# the colours; this checks the assignment the hazard triggers maintain).
STALE_HAZARD_CELLS = """
WITH fresh AS (
    (SELECT DISTINCT ON (h.id, c.layer) h.id AS hazard_id, c.id AS cell_id
     FROM hazard_points h
     JOIN cell_pieces p ON p.geom && h.geom AND ST_Intersects(p.geom, h.geom)
     JOIN cells c ON c.id = p.cell_id
     WHERE GeometryType(h.geom) = 'POINT'
     ORDER BY h.id, c.layer, c.code)
    UNION
    SELECT DISTINCT h.id, p.cell_id
    FROM hazard_points h
    JOIN cell_pieces p ON p.geom && h.geom AND ST_Intersects(p.geom, h.geom)
                          AND NOT ST_Touches(p.geom, h.geom)
    WHERE GeometryType(h.geom) <> 'POINT'
)
SELECT count(*) FROM ((SELECT * FROM fresh EXCEPT SELECT hazard_id, cell_id FROM hazard_cells)
                      UNION ALL (SELECT hazard_id, cell_id FROM hazard_cells EXCEPT SELECT * FROM fresh)) d
"""


def _cells(url: str, layer: str, n: int = 3, district: str | None = None) -> list[tuple[str, shapely.Point]]:
    """N cells of LAYER (in DISTRICT) with an interior point each."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT code, ST_AsBinary(ST_PointOnSurface(geom)) FROM cells WHERE layer = %s"
            " AND (%s::text IS NULL OR district_code = %s) ORDER BY code LIMIT %s",
            (layer, district, district, n),
        ).fetchall()
    return [(code, shapely.from_wkb(bytes(wkb))) for code, wkb in rows]


def _hazard(code: str, point: shapely.Point, **kw) -> dict:
    return {
        "code": code,
        "name": f"大油坊巷 {code} 号危房",
        "kind": "dangerous_building",
        "geometry": {"type": "Point", "coordinates": [point.x, point.y]},
        "level": "red",
        "threatened_persons": 24,
        "property_value": 350.5,
        "responsible_person": "王建国",
        "responsible_unit": "秦淮区住房和城乡建设局",
        "address": "秦淮区大油坊巷 12 号",
        **kw,
    }


def _counts(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM hazard_points), (SELECT count(*) FROM hazard_point_history),"
            " (SELECT count(*) FROM hazard_cells), (SELECT count(*) FROM events),"
            " (SELECT count(*) FROM cell_risk WHERE colour <> 'blue')"
        ).fetchone()


def _colour(client, layer: str, code: str) -> str:
    return client.get(f"/risk-map/{layer}/cells/{code}").json()["colour"]


def _colours(client, cells: dict[str, list[str]]) -> dict[str, set[str]]:
    """The colour of every cell a feature lies in, per layer."""
    return {layer: {_colour(client, layer, c) for c in codes} for layer, codes in cells.items()}


def _create(client, key, body) -> dict:
    r = client.post("/hazard-points", json=body, headers=key)
    assert r.status_code == 201, r.text
    return r.json()


def _move(client, key, hid: int, to: str, version: int, **kw) -> httpx.Response:
    return client.post(
        f"/hazard-points/{hid}/transitions",
        json={"to": to, **kw},
        headers={**key, "If-Match": f'"{version}"'},
    )


def _drive(client, key, hid: int, path: list[str]) -> int:
    """Take hazard HID (version 1) along PATH; return its version."""
    version = 1
    for to in path:
        r = _move(client, key, hid, to, version, note=f"to {to}")
        assert r.status_code == 200, r.text
        version += 1
    return version


def test_create_derives_district_and_lists_the_cells_of_every_layer(city_client, city_db_url, city_keys):
    (code, point), *_ = _cells(city_db_url, "comprehensive", district="320104")
    r = city_client.post("/hazard-points", json=_hazard("YH-1", point), headers=bearer(city_keys["operator"]))
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/hazard-points/{hid}"
    assert r.headers["content-type"] == "application/geo+json"
    props = r.json()["properties"]
    assert props["district"] == {"code": "320104", "name": "秦淮区"}
    assert set(props["cells"]) == set(LAYERS) and props["cells"]["comprehensive"] == [code]
    assert props["cells"]["district"] == ["320104"]
    assert props["status"] == "identified" and set(props["status_dates"]) == {"identified"}
    assert props["on_map"] is True and props["version"] == 1
    assert props["threatened_persons"] == 24 and props["property_value"] == 350.5
    assert props["property_value_unit"] == "10,000 yuan"
    assert props["created_by"] == props["updated_by"] == "test-operator"
    got = city_client.get(f"/hazard-points/{hid}")
    assert got.status_code == 200 and got.json() == r.json() and got.headers["etag"] == '"1"'
    assert_problem(city_client.get("/hazard-points/999999"), 404)
    # A district given by the client is kept (a point on a boundary may be administered across it).
    (_, other), *_ = _cells(city_db_url, "comprehensive", district="320102")
    body = _hazard("YH-2", other, district_code="320104", status="monitoring")
    props = _create(city_client, bearer(city_keys["operator"]), body)["properties"]
    assert props["district"]["code"] == "320104" and props["status"] == "monitoring"
    assert set(props["status_dates"]) == {"monitoring"}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b.update(kind="volcano"), "kind"),
        (lambda b: b.update(level="purple"), "level"),
        (lambda b: b.update(status="demolished"), "status"),
        (lambda b: b.update(status="closed"), "status"),  # nobody registers a point as closed
        (lambda b: b.update(threatened_persons=-1), "threatened_persons"),
        (lambda b: b.update(threatened_persons=2.5), "threatened_persons"),
        (lambda b: b.update(property_value=-0.1), "property_value"),
        (lambda b: b.pop("name"), "name"),
        (lambda b: b.pop("level"), "level"),
        (lambda b: b.update(code="has space"), "code"),
        (lambda b: b.update(district_code="999999"), "district_code"),
        (lambda b: b.update(district_code="abc"), "district_code"),
        (lambda b: b.update(colour="red"), "colour"),
        (
            lambda b: b.update(geometry={"type": "Point", "coordinates": [100.0, 30.0]}),
            "geometry",
        ),  # not Nanjing
        (lambda b: b.update(geometry={"type": "Point", "coordinates": [118.79, 95.0]}), "geometry"),
        (
            lambda b: b.update(
                geometry={"type": "LineString", "coordinates": [[118.8, 32.0], [118.9, 32.1]]}
            ),
            "geometry",
        ),
        (
            lambda b: b.update(
                geometry={
                    "type": "Polygon",
                    "coordinates": [
                        [[118.80, 32.05], [118.81, 32.06], [118.81, 32.05], [118.80, 32.06], [118.80, 32.05]]
                    ],
                }
            ),
            "geometry",
        ),
        (lambda b: b.update(geometry={"type": "Polygon", "coordinates": []}), "geometry"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_writes_nothing(
    city_client, city_db_url, city_keys, mutate, field
):
    (_, point), *_ = _cells(city_db_url, "comprehensive")
    body = _hazard("YH-BAD", point)
    mutate(body)
    before = _counts(city_db_url)
    problem = assert_problem(
        city_client.post("/hazard-points", json=body, headers=bearer(city_keys["operator"])), 422
    )
    fields = [e["field"] for e in problem.get("errors", [])]
    assert any(f.startswith(field) for f in fields), (field, problem)
    assert _counts(city_db_url) == before


def test_writes_need_operator_or_admin_and_codes_are_unique(city_client, city_db_url, city_keys):
    (_, point), *_ = _cells(city_db_url, "comprehensive")
    assert_problem(city_client.post("/hazard-points", json=_hazard("YH-A", point)), 401)
    for role in ("viewer", "worker"):
        r = city_client.post("/hazard-points", json=_hazard("YH-A", point), headers=bearer(city_keys[role]))
        assert_problem(r, 403)
    hid = _create(city_client, bearer(city_keys["admin"]), _hazard("YH-A", point))["id"]
    before = _counts(city_db_url)
    r = city_client.post("/hazard-points", json=_hazard("YH-A", point), headers=bearer(city_keys["operator"]))
    assert_problem(r, 409)
    assert _counts(city_db_url) == before
    viewer = bearer(city_keys["viewer"])
    assert_problem(_move(city_client, viewer, hid, "monitoring", 1), 403)
    assert_problem(city_client.delete(f"/hazard-points/{hid}", headers=viewer), 403)


def test_patch_needs_if_match_moves_district_cells_and_colour(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    (c1, p1), *_ = _cells(city_db_url, "comprehensive", district="320104")
    (c2, p2), *_ = _cells(city_db_url, "comprehensive", district="320102")
    hid = _create(city_client, key, _hazard("YH-M", p1))["id"]
    url = f"/hazard-points/{hid}"
    move = {"geometry": {"type": "Point", "coordinates": [p2.x, p2.y]}}
    assert_problem(city_client.patch(url, json=move, headers=key), 428)
    r = city_client.patch(url, json=move, headers={**key, "If-Match": '"7"'})
    assert_problem(r, 412)
    assert r.headers["etag"] == '"1"'
    r = city_client.patch(url, json=move, headers={**key, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    props = r.json()["properties"]
    assert r.headers["etag"] == '"2"' and props["version"] == 2
    assert props["cells"]["comprehensive"] == [c2] and props["district"]["code"] == "320102"
    assert _colour(city_client, "comprehensive", c1) == "blue"
    assert _colour(city_client, "comprehensive", c2) == "red"
    # The stale ETag again: the late writer learns it lost, nothing is overwritten.
    assert_problem(city_client.patch(url, json={"name": "迟到"}, headers={**key, "If-Match": '"1"'}), 412)
    r = city_client.patch(
        url, json={"level": "yellow", "notes": "复核降级"}, headers={**key, "If-Match": '"2"'}
    )
    assert r.json()["properties"]["level"] == "yellow" and r.json()["properties"]["notes"] == "复核降级"
    assert _colour(city_client, "comprehensive", c2) == "yellow"
    before = _counts(city_db_url)
    for body, field in (
        ({"status": "remediated"}, "status"),  # the status moves through transitions only
        ({"name": None}, "name"),
        ({"threatened_persons": -5}, "threatened_persons"),
        ({"geometry": {"type": "Point", "coordinates": [100.0, 30.0]}}, "geometry"),
        ({"district_code": "320199"}, "district_code"),
        ({"code": "YH-NEW"}, "code"),
    ):
        problem = assert_problem(city_client.patch(url, json=body, headers={**key, "If-Match": '"3"'}), 422)
        assert any(e["field"].startswith(field) for e in problem["errors"]), (field, problem)
    assert _counts(city_db_url) == before
    assert city_client.get(url).json()["properties"]["version"] == 3


@pytest.mark.parametrize("start", STATUSES)
def test_every_transition_is_allowed_or_409_listing_the_allowed_states(
    city_client, city_db_url, city_keys, start
):
    key = bearer(city_keys["operator"])
    (_, point), *_ = _cells(city_db_url, "safety")
    allowed = TRANSITIONS[start]
    hid = _create(city_client, key, _hazard("YH-T0", point))["id"]
    version = _drive(city_client, key, hid, PATHS[start])
    for to in STATUSES:
        if to in allowed:
            continue
        problem = assert_problem(_move(city_client, key, hid, to, version, note="x"), 409)
        assert problem["allowed"] == list(allowed) and problem["current"] == start, problem
        assert f"'{start}'" in problem["detail"]
    assert city_client.get(f"/hazard-points/{hid}").json()["properties"]["version"] == version  # untouched
    for i, to in enumerate(allowed):
        hid = _create(city_client, key, _hazard(f"YH-T{i + 1}", point))["id"]
        version = _drive(city_client, key, hid, PATHS[start])
        before = city_client.get(f"/hazard-points/{hid}").json()["properties"]["status_dates"]
        r = _move(city_client, key, hid, to, version, note=f"{start} → {to}", by="区自然资源局 李工")
        assert r.status_code == 200, r.text
        props = r.json()["properties"]
        assert props["status"] == to and r.headers["etag"] == f'"{version + 1}"'
        assert props["on_map"] == (to not in ("remediated", "closed"))
        stamped = dt.datetime.fromisoformat(props["status_dates"][to])
        assert all(stamped > dt.datetime.fromisoformat(v) for k, v in before.items() if k != to)
        assert {k: v for k, v in props["status_dates"].items() if k != to} == {
            k: v for k, v in before.items() if k != to
        }
        last = city_client.get(f"/hazard-points/{hid}/history").json()[-1]
        assert last["transition"] == {
            "from": start,
            "to": to,
            "note": f"{start} → {to}",
            "by": "区自然资源局 李工",
        }
        assert last["op"] == ("close" if to == "closed" else "transition")


def test_reopen_needs_a_note_and_if_match(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    (_, point), *_ = _cells(city_db_url, "comprehensive")
    hid = _create(city_client, key, _hazard("YH-R", point))["id"]
    version = _drive(city_client, key, hid, PATHS["remediated"])
    problem = assert_problem(_move(city_client, key, hid, "identified", version), 422)
    assert problem["errors"][0]["field"] == "note"
    r = city_client.post(
        f"/hazard-points/{hid}/transitions", json={"to": "identified", "note": "x"}, headers=key
    )
    assert_problem(r, 428)
    assert_problem(_move(city_client, key, hid, "identified", version - 1, note="x"), 412)
    assert_problem(_move(city_client, key, hid, "reopened", version, note="x"), 422)
    r = _move(city_client, key, hid, "identified", version, note="2025 年汛期暴雨后复发")
    assert r.status_code == 200 and r.json()["properties"]["status"] == "identified"


def test_close_is_soft_idempotent_and_history_keeps_notes(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    (code, point), *_ = _cells(city_db_url, "emergency")
    hid = _create(city_client, key, _hazard("YH-H", point))["id"]
    _move(city_client, key, hid, "monitoring", 1, note="设置监测桩", by="网格员 赵六")
    city_client.patch(
        f"/hazard-points/{hid}", json={"threatened_persons": 30}, headers={**key, "If-Match": '"2"'}
    )
    assert_problem(city_client.delete(f"/hazard-points/{hid}", headers={**key, "If-Match": '"2"'}), 412)
    r = city_client.delete(f"/hazard-points/{hid}", headers={**key, "If-Match": '"3"'})
    assert r.status_code == 200 and r.json()["properties"]["status"] == "closed"
    assert r.json()["properties"]["on_map"] is False and "closed" in r.json()["properties"]["status_dates"]
    assert _colour(city_client, "emergency", code) == "blue"
    r = city_client.delete(f"/hazard-points/{hid}", headers=key)  # closing a closed point changes nothing
    assert r.status_code == 200 and r.headers["etag"] == '"4"'
    history = city_client.get(f"/hazard-points/{hid}/history").json()
    assert [h["version"] for h in history] == [1, 2, 3, 4]
    assert [h["op"] for h in history] == ["create", "transition", "update", "close"]
    assert history[0]["changes"]["code"] == [None, "YH-H"] and history[0]["transition"] is None
    assert history[1]["changes"]["status"] == ["identified", "monitoring"]
    assert history[1]["transition"] == {
        "from": "identified",
        "to": "monitoring",
        "note": "设置监测桩",
        "by": "网格员 赵六",
    }
    assert history[2]["changes"] == {"threatened_persons": [24, 30]} and history[2]["transition"] is None
    assert history[3]["transition"] == {"from": "monitoring", "to": "closed", "note": None, "by": None}
    assert all(h["by"] == "test-operator" for h in history)
    assert city_client.get(f"/hazard-points/{hid}").status_code == 200  # kept
    assert_problem(city_client.get("/hazard-points/999999/history"), 404)


def test_red_point_colours_its_cells_until_remediated(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    (_, point), *_ = _cells(city_db_url, "safety", district="320102")
    created = _create(city_client, key, _hazard("YH-C", point))
    hid, cells = created["id"], created["properties"]["cells"]
    # Read-after-write: the 201 came back only after every layer's cell was recoloured.
    assert _colours(city_client, cells) == dict.fromkeys(LAYERS, {"red"})
    for version, to in enumerate(["monitoring", "remediating"], start=1):
        assert _move(city_client, key, hid, to, version).status_code == 200
        assert _colours(city_client, cells) == dict.fromkeys(LAYERS, {"red"}), to  # still a hazard
    assert _move(city_client, key, hid, "remediated", 3, note="加固完成").status_code == 200
    assert _colours(city_client, cells) == dict.fromkeys(LAYERS, {"blue"})
    summary = city_client.get("/risk-map/comprehensive/summary").json()
    assert summary["city"]["red"] == 0
    assert _move(city_client, key, hid, "identified", 4, note="暴雨后墙体新增裂缝").status_code == 200
    assert _colours(city_client, cells) == dict.fromkeys(LAYERS, {"red"})
    with psycopg.connect(city_db_url) as conn:
        assert verify(conn) == []


def test_source_and_hazard_in_one_cell_take_the_higher_colour(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    (code, point), *_ = _cells(city_db_url, "comprehensive")
    source = {
        "code": "RS-HZ",
        "name": "加油站",
        "category": "gas",
        "geometry": {"type": "Point", "coordinates": [point.x, point.y]},
        "assessment": {"method": "LEC", "L": 3, "E": 6, "C": 15},  # 270: orange
    }
    r = city_client.post("/risk-sources", json=source, headers=key)
    assert r.status_code == 201 and r.json()["properties"]["level"] == "orange"
    assert _colour(city_client, "comprehensive", code) == "orange"
    hazard = _create(city_client, key, _hazard("YH-S", point, level="yellow"))
    assert hazard["properties"]["cells"]["comprehensive"] == [code]
    assert _colour(city_client, "comprehensive", code) == "orange"  # the source's level is higher
    r = city_client.patch(
        f"/hazard-points/{hazard['id']}", json={"level": "red"}, headers={**key, "If-Match": '"1"'}
    )
    assert r.status_code == 200
    cell = city_client.get(f"/risk-map/comprehensive/cells/{code}").json()
    assert cell["colour"] == "red" and cell["counts"]["red"] == 1 and cell["counts"]["orange"] == 1
    for version, to in enumerate(["remediating", "remediated"], start=2):
        assert _move(city_client, key, hazard["id"], to, version).status_code == 200
    cell = city_client.get(f"/risk-map/comprehensive/cells/{code}").json()
    assert cell["colour"] == "orange" and cell["counts"] == {"red": 0, "orange": 1, "yellow": 0, "blue": 0}
    with psycopg.connect(city_db_url) as conn:
        assert verify(conn) == []


def test_polygon_hazard_counts_in_every_cell_it_intersects(city_client, city_db_url, city_keys):
    with psycopg.connect(city_db_url) as conn:
        (wkb,) = conn.execute(
            "SELECT ST_AsBinary(ST_Buffer(ST_PointOnSurface(geom)::geography, 700)::geometry)"
            " FROM cells WHERE layer = 'comprehensive' ORDER BY code LIMIT 1"
        ).fetchone()
    poly = shapely.from_wkb(bytes(wkb))
    body = _hazard("YH-P", poly.centroid, kind="landslide", level="orange")
    body["geometry"] = {"type": "Polygon", "coordinates": [[list(c) for c in poly.exterior.coords]]}
    created = _create(city_client, bearer(city_keys["operator"]), body)
    with psycopg.connect(city_db_url) as conn:
        rows = conn.execute(
            "SELECT c.code, ST_AsBinary(c.geom), r.colour FROM cells c JOIN cell_risk r ON r.cell_id = c.id"
            " WHERE c.layer = 'safety'"
        ).fetchall()
    orange = {code for code, _, colour in rows if colour == "orange"}
    expected = {
        code for code, g, _ in rows if shapely.intersection(shapely.from_wkb(bytes(g)), poly).area > 1e-12
    }
    assert orange == expected and len(orange) > 1
    assert set(created["properties"]["cells"]["safety"]) == expected


def test_list_filters_and_paging(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    cells = _cells(city_db_url, "comprehensive", 3, district="320102") + _cells(
        city_db_url, "comprehensive", 3, district="320104"
    )
    kinds = [
        "dangerous_building",
        "waterlogging",
        "landslide",
        "dangerous_building",
        "collapse",
        "waterlogging",
    ]
    for i, ((_, p), kind) in enumerate(zip(cells, kinds, strict=True)):
        hid = _create(
            city_client, key, _hazard(f"YH-{i:02d}", p, kind=kind, level=LEVELS[i % 4], name=f"点{i}")
        )["id"]
        if i % 3 == 0:
            _drive(city_client, key, hid, PATHS["remediated"])
    fc = city_client.get("/hazard-points", params={"limit": 4}).json()
    assert fc["type"] == "FeatureCollection" and fc["numberMatched"] == 6 and fc["numberReturned"] == 4
    nxt = next(link["href"] for link in fc["links"] if link["rel"] == "next")
    assert city_client.get(nxt).json()["numberReturned"] == 2

    def codes(**params) -> list[str]:
        r = city_client.get("/hazard-points", params=params)
        assert r.status_code == 200, r.text
        return [f["properties"]["code"] for f in r.json()["features"]]

    assert codes(kind="waterlogging") == ["YH-01", "YH-05"]
    assert codes(status="remediated") == ["YH-00", "YH-03"]
    assert codes(level="red") == ["YH-00", "YH-04"]
    assert codes(district="320104") == ["YH-03", "YH-04", "YH-05"]
    assert codes(q="点2") == ["YH-02"] and codes(q="yh-05") == ["YH-05"]
    assert codes(kind="dangerous_building", district="320102") == ["YH-00"]
    p = cells[4][1]
    assert codes(bbox=f"{p.x - 1e-6},{p.y - 1e-6},{p.x + 1e-6},{p.y + 1e-6}") == ["YH-04"]
    assert codes(layer="comprehensive", cell=cells[1][0]) == ["YH-01"]
    assert_problem(city_client.get("/hazard-points", params={"cell": cells[1][0]}), 422)
    assert_problem(city_client.get("/hazard-points", params={"layer": "comprehensive", "cell": "nope"}), 404)
    for bad in (
        {"kind": "volcano"},
        {"status": "done"},
        {"level": "purple"},
        {"district": "x"},
        {"limit": 0},
    ):
        assert_problem(city_client.get("/hazard-points", params=bad), 422)


def _expected_stats(url: str) -> dict:
    """The statistics counted independently, in Python, from the rows themselves."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT district_code, kind, status, level, threatened_persons, property_value FROM hazard_points"
        ).fetchall()
        districts = dict(conn.execute("SELECT code, name FROM cells WHERE layer = 'district'").fetchall())

    def breakdown(sel) -> dict:
        total = len(sel)
        remediated = sum(1 for r in sel if r[2] == "remediated")
        closed = sum(1 for r in sel if r[2] == "closed")
        open_ = [r for r in sel if r[2] not in ("remediated", "closed")]
        return {
            "total": total,
            "open": len(open_),
            "remediated": remediated,
            "closed": closed,
            "remediation_rate": round(remediated / (total - closed), 4) if total - closed else None,
            "threatened_persons_open": sum(r[4] for r in open_),
            "property_value_open": pytest.approx(sum(r[5] for r in open_)),
            "by_kind": {k: sum(1 for r in sel if r[1] == k) for k in KINDS},
            "by_status": {s: sum(1 for r in sel if r[2] == s) for s in STATUSES},
            "by_level": {lv: sum(1 for r in sel if r[3] == lv) for lv in LEVELS},
            "open_by_level": {lv: sum(1 for r in open_ if r[3] == lv) for lv in LEVELS},
        }

    return {
        "city": breakdown(rows),
        "districts": {code: breakdown([r for r in rows if r[0] == code]) for code in districts},
        "names": districts,
    }


def test_stats_equal_an_independent_count(city_client, city_db_url, city_keys):
    key = bearer(city_keys["operator"])
    with psycopg.connect(city_db_url) as conn:
        build_demo_hazards(conn, seed=3)
    (_, p1), (_, p2) = _cells(city_db_url, "comprehensive", 2, district="320102")
    a = _create(city_client, key, _hazard("YH-X1", p1, threatened_persons=7))["id"]
    _drive(city_client, key, a, PATHS["remediated"])
    b = _create(city_client, key, _hazard("YH-X2", p2, kind="other", level="blue", threatened_persons=3))[
        "id"
    ]
    city_client.delete(f"/hazard-points/{b}", headers=key)
    r = city_client.get("/hazard-points/stats")
    assert r.status_code == 200, r.text
    stats = r.json()
    want = _expected_stats(city_db_url)
    assert list(stats) == ["rate_definition", "city", "districts"]  # the city totals come first
    assert "closed" in stats["rate_definition"]
    city = stats.pop("city")
    assert city.pop("code") is None and city.pop("name") == "南京市"
    assert city == want["city"]
    assert city["total"] > 100 and 0 < city["remediation_rate"] < 1 and city["by_kind"]["other"] == 1
    assert [d["code"] for d in stats["districts"]] == sorted(want["districts"])
    for d in stats["districts"]:
        code, name = d.pop("code"), d.pop("name")
        assert name == want["names"][code] and d == want["districts"][code], code
    assert sum(d["total"] for d in stats["districts"]) == city["total"]
    one = city_client.get("/hazard-points/stats", params={"district": "320104"}).json()
    assert [d["code"] for d in one["districts"]] == ["320104"] and one["city"]["total"] == city["total"]
    assert_problem(city_client.get("/hazard-points/stats", params={"district": "320111"}), 404)  # not loaded
    assert_problem(city_client.get("/hazard-points/stats", params={"district": "x"}), 422)


def test_stats_of_an_empty_registry(city_client):
    stats = city_client.get("/hazard-points/stats").json()
    assert stats["city"]["total"] == 0 and stats["city"]["remediation_rate"] is None
    assert stats["city"]["by_status"] == dict.fromkeys(STATUSES, 0)
    assert {d["code"] for d in stats["districts"]} == {"320102", "320104"}


def test_demo_hazards_are_deterministic_placed_and_coloured(city_db_url):
    with psycopg.connect(city_db_url) as conn:
        first = generate_demo_hazards(conn, seed=11)
        again = generate_demo_hazards(conn, seed=11)
        other = generate_demo_hazards(conn, seed=12)
        assert [(r["code"], r["geom"].wkb, r["level"], r["status"]) for r in first] == [
            (r["code"], r["geom"].wkb, r["level"], r["status"]) for r in again
        ]
        assert [r["geom"].wkb for r in first] != [r["geom"].wkb for r in other]
        result = build_demo_hazards(conn, seed=11, actor="demo-test")
        conn.commit()
        assert result["skipped"] is False and result["hazard_points"] == len(first)
        kinds = Counter(r["kind"] for r in first)
        # Only 玄武 and 秦淮 are loaded: their share of the 405 危房 (0.17 + 0.30), 紫金山's slopes, and
        # the waterlogging roads inside them.
        assert kinds["dangerous_building"] == round(405 * 0.47)
        assert kinds["landslide"] + kinds["collapse"] > 10 and kinds["waterlogging"] > 20
        assert {r["district"] for r in first} == {"320102", "320104"}
        assert (
            result["by_level"]["blue"]
            > result["by_level"].get("orange", 0)
            > result["by_level"].get("red", 0)
        )
        assert result["by_status"]["remediated"] > result["by_status"]["remediating"] > 0
        assert result["polygons"] > 0
        rows = conn.execute(
            "SELECT count(*) FILTER (WHERE NOT ST_IsValid(geom)),"
            " count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM hazard_cells hc WHERE hc.hazard_id = h.id)),"
            # The district code is that of a district the point lies in.
            " count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM hazard_cells hc"
            "   JOIN cells c ON c.id = hc.cell_id"
            "   WHERE hc.hazard_id = h.id AND c.layer = 'district' AND c.code = h.district_code)),"
            " count(*) FILTER (WHERE status_dates ? status AND created_by = 'demo-test')"
            " FROM hazard_points h"
        ).fetchone()
        assert rows == (0, 0, 0, len(first))
        open_red = conn.execute(
            "SELECT count(*) FROM hazard_points"
            " WHERE level = 'red' AND status NOT IN ('remediated', 'closed')"
        ).fetchone()[0]
        red_cells = conn.execute("SELECT count(*) FROM cell_risk WHERE colour = 'red'").fetchone()[0]
        assert (open_red > 0) == (red_cells > 0)
        assert verify(conn) == [] and conn.execute(STALE_HAZARD_CELLS).fetchone()[0] == 0
        assert build_demo_hazards(conn, seed=11)["skipped"] is True


def test_concurrent_creates_and_transitions_keep_the_map_exact(city_db_url, city_keys):
    """Writers create and move hazard points through the lifecycle in the same few cells at once."""
    cells = _cells(city_db_url, "comprehensive", 3)
    key = bearer(city_keys["operator"])
    shared: list[int] = []  # points every writer races to transition

    async def writer(client: httpx.AsyncClient, w: int) -> Counter:
        rng = random.Random(w)
        seen: Counter = Counter()
        mine: list[int] = []
        for i in range(10):
            _, p = rng.choice(cells)
            if not mine or rng.random() < 0.4:
                body = _hazard(f"W{w}-{i}", p, level=rng.choice(LEVELS), kind=rng.choice(KINDS))
                for _attempt in range(5):
                    r = await client.post("/hazard-points", json=body, headers=key)
                    if r.status_code != 409:  # 409 = deadlock/serialization: retry as the problem says
                        break
                assert r.status_code == 201, r.text
                mine.append(r.json()["id"])
                seen["create"] += 1
                continue
            hid = rng.choice(mine + shared)
            for _attempt in range(25):
                got = await client.get(f"/hazard-points/{hid}")
                status, version = got.json()["properties"]["status"], int(got.headers["etag"].strip('"'))
                to = rng.choice(TRANSITIONS[status])
                r = await client.post(
                    f"/hazard-points/{hid}/transitions",
                    json={"to": to, "note": f"writer {w}"},
                    headers={**key, "If-Match": f'"{version}"'},
                )
                # 412: another writer moved it first; 409: it moved to a state where `to` is no
                # longer allowed, or the database asked for a retry. Read again and retry.
                if r.status_code not in (409, 412):
                    break
                seen[r.status_code] += 1
            assert r.status_code == 200, r.text
            seen["transition"] += 1
        return seen

    async def run(base: str) -> Counter:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for n, (_, p) in enumerate(cells):
                r = await client.post("/hazard-points", json=_hazard(f"SH-{n}", p, level="red"), headers=key)
                shared.append(r.json()["id"])
            results = await asyncio.gather(*(writer(client, w) for w in range(12)))
        return sum(results, Counter())

    with live_server(city_db_url) as base:
        seen = asyncio.run(run(base))
    assert seen["create"] + seen["transition"] == 12 * 10 and seen["transition"] > 30
    with psycopg.connect(city_db_url) as conn:
        assert verify(conn) == []
        assert conn.execute(STALE_HAZARD_CELLS).fetchone()[0] == 0
        open_points = conn.execute(
            "SELECT count(*) FROM hazard_points WHERE status NOT IN ('remediated', 'closed')"
        ).fetchone()[0]
        counted = conn.execute(
            "SELECT sum(n_red + n_orange + n_yellow + n_blue) FROM cell_risk WHERE layer = 'comprehensive'"
        ).fetchone()[0]
        assert open_points > 0 and counted == open_points
        # Every version a writer got a 200 for is in the history exactly once, with its note.
        versions, history = conn.execute(
            "SELECT (SELECT sum(version) FROM hazard_points), (SELECT count(*) FROM hazard_point_history)"
        ).fetchone()
        assert versions == history
        annotated = conn.execute(
            "SELECT count(*) FROM hazard_point_history WHERE changes ? '_transition'"
            " AND changes -> '_transition' ->> 'note' LIKE 'writer %'"
        ).fetchone()[0]
        assert annotated == seen["transition"]
        bad_dates = conn.execute(
            "SELECT count(*) FROM hazard_points WHERE NOT status_dates ? status"
        ).fetchone()[0]
        assert bad_dates == 0


def test_bulk_import_upserts_by_code_keeps_the_lifecycle_and_reads_its_export_back(
    city_client, city_db_url, city_keys
):
    """The import derived from the registry description: CSV in, district and cells derived, the map
    coloured; a registered point's status is never imported (it moves through transitions)."""
    key = bearer(city_keys["operator"])
    (c1, p1), (c2, p2) = _cells(city_db_url, "comprehensive", 2, district="320104")
    csv = (
        "code,name,kind,level,lon,lat,threatened_persons,status\n"
        f"YH-I-1,老城危房,dangerous_building,red,{p1.x},{p1.y},12,\n"
        f"YH-I-2,积水点,waterlogging,yellow,{p2.x},{p2.y},,monitoring\n"
    )

    def upload(content: bytes, name: str = "hazards.csv"):
        return city_client.post("/hazard-points/import", files={"file": (name, content)}, headers=key)

    r = upload(csv.encode())
    assert r.status_code == 200, r.text
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (2, 0, 0)
    got = {f["properties"]["code"]: f for f in city_client.get("/hazard-points").json()["features"]}
    one = got["YH-I-1"]["properties"]
    assert one["district"]["code"] == "320104" and one["cells"]["comprehensive"] == [c1]
    assert one["status"] == "identified" and one["created_by"] == "test-operator"
    assert got["YH-I-2"]["properties"]["status"] == "monitoring"
    assert _colour(city_client, "comprehensive", c1) == "red"

    # A status in the file does not move a registered point; a changed name is one new version.
    again = csv.replace(",12,\n", ",12,remediated\n").replace("积水点", "中山路积水点")
    r = upload(again.encode())
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (0, 1, 1), r.text
    assert (
        city_client.get(f"/hazard-points/{got['YH-I-1']['id']}").json()["properties"]["status"]
        == "identified"
    )
    assert _colour(city_client, "comprehensive", c1) == "red"

    # What GET returns reads back unchanged; a bad row rejects the whole file, naming row and field.
    exported = city_client.get("/hazard-points").content
    r = upload(exported, "export.geojson")
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 2), r.text
    before = _counts(city_db_url)
    bad = csv + f"YH-I-3,新点,volcano,red,{p1.x},{p1.y},,\nYH-I-4,新点,other,red,{p1.x},{p1.y},-3,\n"
    body = assert_problem(upload(bad.encode()), 422)
    assert {(e["row"], e["field"]) for e in body["report"]["errors"]} == {
        (3, "kind"),
        (4, "threatened_persons"),
    }
    assert _counts(city_db_url) == before
