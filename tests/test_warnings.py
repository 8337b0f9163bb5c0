"""Targeted warnings: targeting against an independent shapely computation, re-posts, escalation,
downgrade, area changes and cancellation (all idempotent), concurrency, bad areas, rules, summary."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
import shapely
from conftest import assert_problem, bearer
from live import live_server
from pyproj import Geod
from shapely.geometry import shape

GEOD = Geod(ellps="WGS84")

# Inside the small test city (玄武 320102, 秦淮 320104): a concave polygon with a hole.
AREA = {
    "type": "Polygon",
    "coordinates": [
        [
            [118.76, 31.99],
            [118.86, 32.00],
            [118.80, 32.05],
            [118.88, 32.10],
            [118.77, 32.09],
            [118.76, 31.99],
        ],
        [[118.78, 32.06], [118.79, 32.06], [118.79, 32.07], [118.78, 32.07], [118.78, 32.06]],
    ],
}
# A smaller area inside AREA (its southern part).
SMALL = {
    "type": "Polygon",
    "coordinates": [
        [[118.765, 31.995], [118.84, 32.003], [118.80, 32.03], [118.77, 32.03], [118.765, 31.995]]
    ],
}
RAIN_HAZARDS = {
    "waterlogging",
    "landslide",
    "collapse",
    "debris_flow",
    "ground_subsidence",
    "dangerous_building",
}
RAIN_SOURCES = {"construction_site", "tailings_pond"}
RAIN_SITES = {
    "underpass",
    "tunnel",
    "underground_garage",
    "underground_space",
    "low_lying_block",
    "construction_site",
    "nursing_home",
    "school",
    "kindergarten",
    "hospital",
}
EVACUATE_AT_RED = {"dangerous_building", "landslide", "collapse", "debris_flow", "ground_subsidence"}
SOURCE_CATEGORIES = [
    "construction_site",
    "tailings_pond",
    "crowded_place",
    "hazardous_chemicals",
    "gas",
    "other",
]
HAZARD_KINDS = [
    "waterlogging",
    "landslide",
    "collapse",
    "dangerous_building",
    "debris_flow",
    "ground_subsidence",
    "other",
]


def seed_targets(url: str, n_sources: int = 400, n_hazards: int = 160, seed: int = 11) -> None:
    """Risk sources and hazard points spread over the test city: points and small polygons, of every
    kind, some inactive (closed/suspended sources, remediated/closed hazard points)."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            WITH pts AS (
                SELECT row_number() OVER () AS i, (d).geom AS g
                FROM (SELECT ST_Dump(ST_GeneratePoints(ST_Union(geom), %(n)s, %(seed)s)) AS d
                      FROM cells WHERE layer = 'district') x)
            INSERT INTO risk_sources (code, name, category, geom, method, l, e, c, status,
                                      created_by, updated_by)
            SELECT 'T-RS-' || i, '测试风险源 ' || i,
                   (%(cats)s::text[])[1 + i %% cardinality(%(cats)s::text[])],
                   CASE WHEN i %% 7 = 0 THEN ST_Buffer(g, 0.0015, 'quad_segs=2') ELSE g END,
                   'LEC', 6, 6, 15,
                   CASE WHEN i %% 11 = 0 THEN 'closed' WHEN i %% 13 = 0 THEN 'suspended' ELSE 'active' END,
                   'test', 'test'
            FROM pts
            """,
            {"n": n_sources, "seed": seed, "cats": SOURCE_CATEGORIES},
        )
        conn.execute(
            """
            WITH pts AS (
                SELECT row_number() OVER () AS i, (d).geom AS g
                FROM (SELECT ST_Dump(ST_GeneratePoints(ST_Union(geom), %(n)s, %(seed)s)) AS d
                      FROM cells WHERE layer = 'district') x)
            INSERT INTO hazard_points (code, name, kind, geom, threatened_persons, level, status,
                                       created_by, updated_by)
            SELECT 'T-HP-' || i, '测试隐患点 ' || i,
                   (%(kinds)s::text[])[1 + i %% cardinality(%(kinds)s::text[])],
                   CASE WHEN i %% 5 = 0 THEN ST_Buffer(g, 0.001, 'quad_segs=2') ELSE g END,
                   (i * 37) %% 400, 'orange',
                   CASE i %% 9 WHEN 0 THEN 'remediated' WHEN 1 THEN 'closed' WHEN 2 THEN 'monitoring'
                               ELSE 'identified' END,
                   'test', 'test'
            FROM pts
            """,
            {"n": n_hazards, "seed": seed + 1, "kinds": HAZARD_KINDS},
        )


def seed_shelters(url: str) -> None:
    """A few shelters over the test city, all with room (standby), one closed, one full."""
    with psycopg.connect(url) as conn:
        conn.execute(
            """
            INSERT INTO shelters (code, name, class, geom, capacity, occupancy, status,
                                  created_by, updated_by)
            VALUES
              ('T-SH-1', '玄武湖公园', 'fixed', ST_SetSRID(ST_MakePoint(118.795, 32.075), 4326), 5000, 0,
               'standby', 't', 't'),
              ('T-SH-2', '白鹭洲公园', 'fixed', ST_SetSRID(ST_MakePoint(118.795, 32.02), 4326), 3000, 0,
               'open', 't', 't'),
              ('T-SH-3', '月牙湖广场', 'emergency', ST_SetSRID(ST_MakePoint(118.83, 32.04), 4326), 800, 0,
               'standby', 't', 't'),
              ('T-SH-4', '闭馆体育场', 'fixed', ST_SetSRID(ST_MakePoint(118.81, 32.05), 4326), 9000, 0,
               'closed', 't', 't'),
              ('T-SH-5', '满员小学', 'emergency', ST_SetSRID(ST_MakePoint(118.78, 32.00), 4326), 100, 100,
               'full', 't', 't')
            """
        )


# One time base for the whole run, so that re-posting "the same" warning sends the same window.
T0 = datetime.now(UTC).replace(microsecond=0)


def warning(
    identifier: str, *, level: str = "red", hazard: str = "rainstorm", area: dict | None = None, **kw
):
    now = T0
    body = {
        "identifier": identifier,
        "sender": "南京市气象台",
        "hazard_type": hazard,
        "level": level,
        "valid_from": (now - timedelta(hours=1)).isoformat(),
        "valid_until": (now + timedelta(hours=12)).isoformat(),
        "headline": f"南京市气象台发布暴雨{level}预警",
        "description": "预计未来3小时内将出现50毫米以上降水。",
        "area": area if area is not None else {"geometry": AREA},
    }
    body.update(kw)
    return body


def post(client, key: str, body: dict, status: int | None = None) -> dict:
    r = client.post("/warnings", json=body, headers=bearer(key))
    if status is not None:
        assert r.status_code == status, r.text
    else:
        assert r.status_code in (200, 201), r.text
    return r.json()


def orders(url: str, warning_id: int) -> dict[tuple[str, int], dict]:
    """The warning's orders keyed by target."""
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(
            "SELECT o.*, ST_AsText(o.geom) AS wkt FROM work_orders o WHERE warning_id = %s", (warning_id,)
        ).fetchall()
    return {(r["target_type"], r["target_id"]): r for r in rows}


def live(rows: dict) -> set:
    return {k for k, r in rows.items() if r["status"] != "cancelled"}


def expected_targets(url: str, area: dict, hazards: set[str], sources: set[str]) -> set[tuple[str, int]]:
    """Independently of PostGIS: which active targets of the exposed kinds intersect AREA (shapely)."""
    geom = shape(area)
    with psycopg.connect(url) as conn:
        rs = conn.execute("SELECT id, category, status, ST_AsBinary(geom) FROM risk_sources").fetchall()
        hp = conn.execute("SELECT id, kind, status, ST_AsBinary(geom) FROM hazard_points").fetchall()
    out = set()
    for i, cat, status, wkb in rs:
        if status == "active" and cat in sources and geom.intersects(shapely.from_wkb(bytes(wkb))):
            out.add(("risk_source", i))
    for i, kind, status, wkb in hp:
        if (
            status not in ("remediated", "closed")
            and kind in hazards
            and geom.intersects(shapely.from_wkb(bytes(wkb)))
        ):
            out.add(("hazard_point", i))
    return out


def counts(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM warnings), (SELECT count(*) FROM work_orders),"
            " (SELECT count(*) FROM warning_messages), (SELECT count(*) FROM events),"
            " (SELECT count(*) FROM work_order_history), (SELECT count(*) FROM warning_history)"
        ).fetchone()


@pytest.fixture
def targets(city_db_url):
    seed_targets(city_db_url)
    seed_shelters(city_db_url)
    return city_db_url


# ---------------------------------------------------------------------------------------------
# Targeting


def test_targeting_agrees_with_shapely_and_assigns_cells(city_client, targets, city_keys):
    url = targets
    body = post(city_client, city_keys["operator"], warning("NJ-RS-1"), 201)
    wid = body["id"]
    got = orders(url, wid)
    want = expected_targets(url, AREA, RAIN_HAZARDS, RAIN_SOURCES)
    assert len(want) > 40  # the seed puts plenty of targets in the area
    assert set(got) == want
    # Actions by kind at red, due in the red due time (60 min), all open.
    for (ttype, _), o in got.items():
        evac = ttype == "hazard_point" and o["target_kind"] in EVACUATE_AT_RED
        assert o["action"] == ("evacuate" if evac else "patrol_prepare_evacuation")
        assert o["level"] == "red" and o["status"] == "open"
        assert abs((o["due_at"] - o["created_at"]).total_seconds() - 3600) < 5
    # The assigned cell holds the order's point, which lies on the target (independent check).
    with psycopg.connect(url) as conn:
        cells = {
            code: shapely.from_wkb(bytes(wkb))
            for code, wkb in conn.execute(
                "SELECT code, ST_AsBinary(geom) FROM cells WHERE layer = 'comprehensive'"
            ).fetchall()
        }
        geoms = {
            ("risk_source", i): shapely.from_wkb(bytes(w))
            for i, w in conn.execute("SELECT id, ST_AsBinary(geom) FROM risk_sources").fetchall()
        } | {
            ("hazard_point", i): shapely.from_wkb(bytes(w))
            for i, w in conn.execute("SELECT id, ST_AsBinary(geom) FROM hazard_points").fetchall()
        }
    for key, o in got.items():
        pos = shapely.from_wkt(o["wkt"])
        assert geoms[key].buffer(1e-9).contains(pos)
        holding = sorted(code for code, cell in cells.items() if cell.buffer(1e-9).contains(pos))
        assert o["cell_code"] in holding, (key, o["cell_code"], holding)
        if geoms[key].geom_type == "Point":
            assert o["cell_code"] == holding[0]  # the smallest code on a shared edge, as /cells/at says
    # Summary figures.
    s = city_client.get(f"/warnings/{wid}").json()
    assert s["orders"]["total"] == len(want) and s["orders"]["by_status"]["open"] == len(want)
    assert s["orders"]["closure_rate"] == 0 and s["orders"]["overdue"] == 0
    kinds = s["targets_by_kind"]
    assert sum(sum(v.values()) for v in kinds.values()) == len(want)
    assert (
        set(kinds.get("risk_source", {})) <= RAIN_SOURCES
        and set(kinds.get("hazard_point", {})) <= RAIN_HAZARDS
    )
    assert s["affected_cells"]["district"]["count"] == 2
    assert 0 < s["affected_cells"]["comprehensive"]["count"] < 360
    assert s["area"]["type"] == "MultiPolygon" and len(s["area"]["coordinates"][0]) == 2  # the hole kept


def test_multipolygon_heat_warning_targets_other_kinds(city_client, targets, city_keys):
    url = targets
    east = [[[118.84, 32.02], [118.89, 32.02], [118.89, 32.08], [118.84, 32.08], [118.84, 32.02]]]
    west = [[[118.755, 32.0], [118.78, 32.0], [118.78, 32.03], [118.755, 32.03], [118.755, 32.0]]]
    area = {"type": "MultiPolygon", "coordinates": [east, west]}
    body = post(
        city_client,
        city_keys["operator"],
        warning("NJ-HEAT-1", hazard="heat", level="orange", area={"geometry": area}),
        201,
    )
    got = orders(url, body["id"])
    want = expected_targets(url, area, set(), {"hazardous_chemicals", "crowded_place", "fireworks"})
    assert want and set(got) == want
    assert {o["action"] for o in got.values()} == {"patrol_prepare_evacuation"}
    assert all(abs((o["due_at"] - o["created_at"]).total_seconds() - 7200) < 5 for o in got.values())


def test_evacuations_get_shelter_places_within_capacity(city_client, targets, city_keys):
    """Places are reserved, never beyond a shelter's free places (the optimal split is checked in
    tests/test_warning_matching.py); the order names the shelter holding most of its people."""
    url = targets
    body = post(city_client, city_keys["operator"], warning("NJ-RS-EVAC"), 201)
    got = orders(url, body["id"])
    with psycopg.connect(url) as conn:
        free = dict(
            conn.execute(
                "SELECT id, capacity - occupancy FROM shelters WHERE status IN ('open', 'standby')"
            ).fetchall()
        )
        places = conn.execute(
            "SELECT order_id, shelter_id, persons FROM shelter_reservations WHERE released_at IS NULL"
        ).fetchall()
    evac = [o for o in got.values() if o["action"] == "evacuate"]
    assert len(evac) > 5
    per_shelter: dict[int, int] = {}
    for _, shelter_id, persons in places:
        per_shelter[shelter_id] = per_shelter.get(shelter_id, 0) + persons
    assert all(per_shelter[s] <= free[s] for s in per_shelter)
    demand = sum(o["threatened_persons"] for o in evac)
    assert sum(per_shelter.values()) == min(demand, sum(free.values()))
    for o in evac:
        mine = sorted((p for i, s, p in places if i == o["id"]), reverse=True)
        assert sum(mine) <= o["threatened_persons"]
        if mine:
            top = max((p, -s) for i, s, p in places if i == o["id"])
            assert o["shelter_id"] == -top[1]
    # A threatened crowd bigger than every shelter's room: the order says so.
    with psycopg.connect(url) as conn:
        hid = conn.execute(
            "INSERT INTO hazard_points (code, name, kind, geom, threatened_persons, level, created_by,"
            " updated_by)"
            " VALUES ('T-HP-BIG', '大滑坡', 'landslide', ST_SetSRID(ST_MakePoint(118.80, 32.01), 4326), 6000,"
            " 'red', 't', 't') RETURNING id"
        ).fetchone()[0]
    post(city_client, city_keys["operator"], warning("NJ-RS-EVAC"), 200)
    big = orders(url, body["id"])[("hazard_point", hid)]
    assert big["action"] == "evacuate"
    short = [n for n in big["match_notes"] if n["need"] == "shelter"]
    assert short and short[0]["short"] > 0 and "no shelter place" in short[0]["message"]
    detail = city_client.get(f"/work-orders/{big['id']}", headers=bearer(city_keys["operator"])).json()
    assert detail["match_notes"] == big["match_notes"]
    s = city_client.get(f"/warnings/{body['id']}").json()["evacuation"]
    assert s["without_shelter"] >= 1 and s["threatened_persons"] >= 6000
    assert all(sh["persons_directed"] > 0 for sh in s["shelters"])


# ---------------------------------------------------------------------------------------------
# Re-posts, escalation, downgrade, area changes and cancellation


def test_update_downgrade_area_change_cancel_and_repost_are_idempotent(city_client, targets, city_keys):
    url, op = targets, city_keys["operator"]
    first = post(city_client, op, warning("NJ-RS-2", level="yellow"), 201)
    wid = first["id"]
    assert first["result"]["created"] and first["result"]["orders"]["created"] > 0
    v1 = orders(url, wid)
    assert {o["action"] for o in v1.values()} == {"notify_patrol"}
    assert all(abs((o["due_at"] - o["created_at"]).total_seconds() - 6 * 3600) < 5 for o in v1.values())

    # The same message again: nothing changes, no event, no history.
    before = counts(url)
    again = post(city_client, op, warning("NJ-RS-2", level="yellow"), 200)
    assert again["result"]["applied"] is False and again["result"]["orders"]["created"] == 0
    assert counts(url) == before and again["version"] == first["version"]

    # A worker finished one dangerous-building order before the level rose.
    done_key = next(k for k, o in v1.items() if o["target_kind"] == "dangerous_building")
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE work_orders SET status = 'done', done_note = 'checked', done_at = now(),"
            " version = version + 1 WHERE id = %s",
            (v1[done_key]["id"],),
        )

    # Level up to red: every order escalates (the done one reopens), none is duplicated.
    red = post(city_client, op, warning("NJ-RS-2", level="red"), 200)
    assert red["result"]["changes"]["level"] == ["yellow", "red"]
    assert red["result"]["orders"]["escalated"] == len(v1) and red["result"]["orders"]["created"] == 0
    v2 = orders(url, wid)
    assert set(v2) == set(v1)
    assert v2[done_key]["status"] == "open" and v2[done_key]["action"] == "evacuate"
    assert v2[done_key]["done_note"] is None
    for k, o in v2.items():
        assert o["id"] == v1[k]["id"] and o["level"] == "red"
        assert o["action"] in ("evacuate", "patrol_prepare_evacuation")
    assert post(city_client, op, warning("NJ-RS-2", level="red"), 200)["result"]["applied"] is False

    # Downgrade to blue: the warning follows, issued orders keep their action.
    blue = post(city_client, op, warning("NJ-RS-2", level="blue"), 200)
    assert blue["level"] == "blue" and blue["result"]["orders"] == {
        "created": 0,
        "escalated": 0,
        "reopened": 0,
        "cancelled": 0,
        "targets": len(v1),
    }
    v3 = orders(url, wid)
    assert {k: o["action"] for k, o in v3.items()} == {k: o["action"] for k, o in v2.items()}
    assert post(city_client, op, warning("NJ-RS-2", level="blue"), 200)["result"]["applied"] is False

    # The area shrinks: orders whose target left are cancelled; one finished meanwhile stays done.
    small_want = expected_targets(url, SMALL, RAIN_HAZARDS, RAIN_SOURCES)
    assert small_want and small_want < set(v1)
    outside = sorted(set(v1) - small_want)
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE work_orders SET status = 'done', done_note = 'ok', version = version + 1 WHERE id = %s",
            (v3[outside[0]]["id"],),
        )
    shrink = post(city_client, op, warning("NJ-RS-2", level="blue", area={"geometry": SMALL}), 200)
    assert shrink["result"]["orders"]["cancelled"] == len(outside) - 1
    assert "area" in shrink["result"]["changes"]
    v4 = orders(url, wid)
    assert live(v4) == small_want | {outside[0]}
    assert v4[outside[0]]["status"] == "done"
    assert {v4[k]["cancel_cause"] for k in outside[1:]} == {"not_targeted"}
    assert (
        post(city_client, op, warning("NJ-RS-2", level="blue", area={"geometry": SMALL}), 200)["result"][
            "applied"
        ]
        is False
    )

    # Back to the full area: the cancelled orders reopen (same rows, same actions), none is new.
    back = post(city_client, op, warning("NJ-RS-2", level="blue"), 200)
    assert (
        back["result"]["orders"]["reopened"] == len(outside) - 1 and back["result"]["orders"]["created"] == 0
    )
    v5 = orders(url, wid)
    assert set(v5) == set(v1) and all(v5[k]["id"] == v1[k]["id"] for k in v1)
    assert all(v5[k]["status"] == "open" and v5[k]["action"] == v2[k]["action"] for k in outside[1:])

    # Cancel: unfinished orders are cancelled, the done one stays; cancelling again changes nothing.
    r = city_client.post(f"/warnings/{wid}/cancel", json={"reason": "预警解除"}, headers=bearer(op))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["result"]["orders"]["cancelled"] == len(v1) - 1
    v6 = orders(url, wid)
    assert {o["status"] for o in v6.values()} == {"cancelled", "done"}
    assert {o["cancel_cause"] for o in v6.values() if o["status"] == "cancelled"} == {"warning_cancelled"}
    before = counts(url)
    r = city_client.post(f"/warnings/{wid}/cancel", headers=bearer(op))
    assert r.status_code == 200 and r.json()["result"]["applied"] is False
    assert counts(url) == before
    # A cancelled warning is not revived by a re-post.
    body = assert_problem(city_client.post("/warnings", json=warning("NJ-RS-2"), headers=bearer(op)), 409)
    assert "cancelled" in body["detail"]
    assert counts(url) == before
    history = city_client.get(f"/warnings/{wid}/history").json()
    assert [h["op"] for h in history] == ["create", "update", "update", "update", "update", "cancel"]


def test_new_targets_get_orders_and_gone_ones_are_cancelled_on_repost(city_client, targets, city_keys):
    url, op = targets, city_keys["operator"]
    wid = post(city_client, op, warning("NJ-RS-3"), 201)["id"]
    before = orders(url, wid)
    with psycopg.connect(url) as conn:
        new_id = conn.execute(
            "INSERT INTO risk_sources (code, name, category, geom, method, l, e, c, created_by, updated_by)"
            " VALUES ('T-NEW', '新工地', 'construction_site', ST_SetSRID(ST_MakePoint(118.78, 32.02), 4326),"
            " 'LEC', 6, 6, 15, 't', 't') RETURNING id"
        ).fetchone()[0]
        gone = next(k for k in before if k[0] == "risk_source")
        conn.execute("UPDATE risk_sources SET status = 'closed' WHERE id = %s", (gone[1],))
        healed = next(k for k in before if k[0] == "hazard_point")
        conn.execute("UPDATE hazard_points SET status = 'remediated' WHERE id = %s", (healed[1],))
    r = post(city_client, op, warning("NJ-RS-3"), 200)["result"]
    assert r["orders"]["created"] == 1 and r["orders"]["cancelled"] == 2 and r["changes"] == {}
    after = orders(url, wid)
    assert ("risk_source", new_id) in live(after)
    assert after[gone]["status"] == after[healed]["status"] == "cancelled"
    assert live(after) == expected_targets(url, AREA, RAIN_HAZARDS, RAIN_SOURCES)
    # The issuer corrects the hazard: the rainstorm's targets go, the heat's come, in one re-post.
    heat = {"hazardous_chemicals", "crowded_place", "fireworks"}
    r = post(city_client, op, warning("NJ-RS-3", hazard="heat"), 200)["result"]
    assert r["changes"]["hazard_type"] == ["rainstorm", "heat"]
    assert r["orders"]["cancelled"] == len(live(after))
    assert live(orders(url, wid)) == expected_targets(url, AREA, set(), heat)


def test_concurrent_reposts_never_duplicate(targets, city_keys):
    url, op = targets, city_keys["operator"]
    want = expected_targets(url, AREA, RAIN_HAZARDS, RAIN_SOURCES)

    async def run(base: str) -> list[int]:
        async with httpx.AsyncClient(base_url=base, headers=bearer(op), timeout=60) as client:
            first = [client.post("/warnings", json=warning("NJ-RACE", level="yellow")) for _ in range(6)]
            then = [
                client.post("/warnings", json=warning("NJ-RACE", level=lvl))
                for lvl in ("red", "red", "orange")
            ]
            return [r.status_code for r in await asyncio.gather(*first)] + [
                r.status_code for r in await asyncio.gather(*then)
            ]

    with live_server(url) as base:
        statuses = asyncio.run(run(base))
    assert sorted(statuses[:6]) == [200] * 5 + [201] and set(statuses[6:]) == {200}
    with psycopg.connect(url) as conn:
        n_warn, n_orders, n_targets, n_msg = conn.execute(
            "SELECT (SELECT count(*) FROM warnings), count(*), count(DISTINCT (target_type, target_id)),"
            " (SELECT count(*) FROM warning_messages) FROM work_orders"
        ).fetchone()
        actions = {r[0] for r in conn.execute("SELECT DISTINCT action FROM work_orders")}
    assert (n_warn, n_msg) == (1, 1)
    assert n_orders == n_targets == len(want)
    assert actions == {"evacuate", "patrol_prepare_evacuation"}  # red reached, orange weakened nothing


# ---------------------------------------------------------------------------------------------
# Areas given as districts or cells; bad areas


def test_area_by_districts_and_by_cells(city_client, targets, city_keys):
    url, op = targets, city_keys["operator"]
    body = post(city_client, op, warning("NJ-D", area={"districts": ["320104"]}), 201)
    with psycopg.connect(url) as conn:
        district = conn.execute(
            "SELECT ST_AsGeoJSON(geom)::json FROM cells WHERE layer = 'district' AND code = '320104'"
        ).fetchone()[0]
        n_cells = dict(
            conn.execute(
                "SELECT layer, count(*) FROM cells WHERE district_code = '320104' GROUP BY layer"
            ).fetchall()
        )
        some = [
            r[0]
            for r in conn.execute(
                "SELECT code FROM cells WHERE layer = 'comprehensive' ORDER BY code LIMIT 12"
            )
        ]
        cell_union = conn.execute(
            "SELECT ST_AsGeoJSON(ST_Union(geom))::json FROM cells WHERE layer = 'comprehensive'"
            " AND code = ANY(%s)",
            (some,),
        ).fetchone()[0]
    assert set(orders(url, body["id"])) == expected_targets(url, district, RAIN_HAZARDS, RAIN_SOURCES)
    s = city_client.get(f"/warnings/{body['id']}?cells=true").json()
    assert s["affected_cells"]["district"] == {"count": 1, "codes": ["320104"]}
    for layer in ("comprehensive", "emergency", "safety"):
        assert s["affected_cells"][layer]["count"] == n_cells[layer], layer
    assert s["area_spec"] == {"districts": ["320104"]}
    # The same district given as a geometry: cells found by intersection, not by the crosswalk.
    same = post(city_client, op, warning("NJ-DG", area={"geometry": district}), 201)
    by_geometry = city_client.get(f"/warnings/{same['id']}?cells=true").json()["affected_cells"]
    assert by_geometry == s["affected_cells"]

    body = post(city_client, op, warning("NJ-C", area={"layer": "comprehensive", "cells": some}), 201)
    assert set(orders(url, body["id"])) == expected_targets(url, cell_union, RAIN_HAZARDS, RAIN_SOURCES)
    s = city_client.get(f"/warnings/{body['id']}?cells=true").json()
    assert s["affected_cells"]["comprehensive"]["codes"] == sorted(some)


BAD_AREAS = [
    (
        {
            "geometry": {
                "type": "Polygon",
                "coordinates": [
                    [[118.78, 32.0], [118.85, 32.08], [118.85, 32.0], [118.78, 32.08], [118.78, 32.0]]
                ],
            }
        },
        "Self-intersection",
    ),
    ({"geometry": {"type": "Polygon", "coordinates": []}}, "empty"),
    ({"geometry": {"type": "MultiPolygon", "coordinates": []}}, "empty"),
    (
        {
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[116.3, 39.9], [116.5, 39.9], [116.5, 40.0], [116.3, 39.9]]],
            }
        },
        "outside the city",
    ),
    (
        {
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[32.0, 118.78], [32.05, 118.8], [32.0, 118.8], [32.0, 118.78]]],
            }
        },
        "latitude",
    ),
    ({"geometry": {"type": "Polygon", "coordinates": [[[118.8, 32.0], [118.81, 32.01]]]}}, "closed"),
    ({"geometry": {"type": "Polygon", "coordinates": [[1, 2]]}}, "well-formed"),
    ({"geometry": {"type": "Point", "coordinates": [118.8, 32.0]}}, "Polygon"),
    ({"districts": ["320199"]}, "320199"),
    ({"districts": ["320115"]}, "320115"),  # a real district, but not loaded in the test city
    ({"layer": "comprehensive", "cells": ["NOPE-1", "NOPE-2"]}, "NOPE-1"),
    ({"layer": "nolayer", "cells": ["X"]}, "nolayer"),
    ({"districts": ["320102"], "cells": ["X"], "layer": "comprehensive"}, "exactly one"),
    ({}, "exactly one"),
]


def test_bad_areas_are_422_and_write_nothing(city_client, targets, city_keys):
    before = counts(targets)
    for area, says in BAD_AREAS:
        r = city_client.post(
            "/warnings", json=warning("NJ-BAD", area=area), headers=bearer(city_keys["operator"])
        )
        body = assert_problem(r, 422)
        assert says.lower() in r.text.lower(), (area, body)
        assert any(e["field"].startswith("area") for e in body["errors"]), (area, body)
        assert counts(targets) == before, area


BAD_FIELDS = [
    ({"hazard_type": "volcano"}, "hazard_type"),
    ({"level": "purple"}, "level"),
    ({"valid_until": "2020-01-01T00:00:00+08:00", "valid_from": "2020-01-02T00:00:00+08:00"}, "body"),
    (
        {
            "valid_until": (T0 - timedelta(minutes=1)).isoformat(),
            "valid_from": (T0 - timedelta(hours=3)).isoformat(),
        },
        "valid_until",
    ),
    ({"valid_from": "2026-07-01T08:00:00"}, "valid_from"),  # no time zone
    ({"identifier": "has space"}, "identifier"),
    ({"headline": ""}, "headline"),
    ({"colour": "red"}, "colour"),
]


def test_bad_fields_are_422_and_write_nothing(city_client, targets, city_keys):
    before = counts(targets)
    for change, field in BAD_FIELDS:
        r = city_client.post(
            "/warnings", json={**warning("NJ-BAD2"), **change}, headers=bearer(city_keys["operator"])
        )
        body = assert_problem(r, 422)
        assert any(e["field"] == field or e["field"].startswith(field) for e in body["errors"]), (
            change,
            body,
        )
        assert counts(targets) == before, change


def test_posting_needs_operator_and_json_or_xml(city_client, targets, city_keys):
    assert_problem(city_client.post("/warnings", json=warning("NJ-A")), 401)
    for role in ("worker", "viewer"):
        assert_problem(
            city_client.post("/warnings", json=warning("NJ-A"), headers=bearer(city_keys[role])), 403
        )
    r = city_client.post(
        "/warnings",
        content=b"identifier=x",
        headers={**bearer(city_keys["admin"]), "content-type": "text/plain"},
    )
    assert_problem(r, 415)
    assert counts(targets)[0] == 0


# ---------------------------------------------------------------------------------------------
# Rules, summary, list, events


def test_rules_are_admin_editable_recorded_and_used(city_client, targets, city_keys):
    url = targets
    rules = city_client.get("/warning-rules").json()
    assert rules["due_minutes"] == {"red": 60, "orange": 120, "yellow": 360, "blue": 1440}
    rain = {(t["type"], t["kind"]): t["actions"] for t in rules["hazards"]["rainstorm"]}
    assert set(rain) == {("hazard_point", k) for k in RAIN_HAZARDS} | {
        ("risk_source", k) for k in RAIN_SOURCES
    } | {("vulnerable_site", k) for k in RAIN_SITES}
    assert rain[("hazard_point", "dangerous_building")]["red"] == "evacuate"
    assert rain[("risk_source", "construction_site")] == {
        "blue": "notify",
        "yellow": "notify_patrol",
        "orange": "patrol_prepare_evacuation",
        "red": "patrol_prepare_evacuation",
    }
    assert rules["hazards"]["other"] == []
    new = {
        "targets": [
            {
                "type": "risk_source",
                "kind": "gas",
                "actions": {"blue": "none", "yellow": "notify", "orange": "notify_patrol", "red": "evacuate"},
            },
        ],
        "reason": "燃气泄漏专项",
    }
    assert_problem(
        city_client.put("/warning-rules/other", json=new, headers=bearer(city_keys["operator"])), 403
    )
    bad = {"targets": [{"type": "risk_source", "kind": "volcano", "actions": new["targets"][0]["actions"]}]}
    assert_problem(city_client.put("/warning-rules/other", json=bad, headers=bearer(city_keys["admin"])), 422)
    dup = {"targets": new["targets"] * 2}
    assert_problem(city_client.put("/warning-rules/other", json=dup, headers=bearer(city_keys["admin"])), 422)
    assert city_client.get("/warning-rules").json() == rules  # refused changes wrote nothing
    r = city_client.put("/warning-rules/other", json=new, headers=bearer(city_keys["admin"]))
    assert r.status_code == 200 and r.json()["hazards"]["other"] == new["targets"]
    r = city_client.put(
        "/warning-rules/due-times",
        json={"red": 30, "orange": 90, "yellow": 240, "blue": 720, "reason": "汛期"},
        headers=bearer(city_keys["admin"]),
    )
    assert r.status_code == 200 and r.json()["due_minutes"]["red"] == 30
    # Blue asks nothing of gas sites; red evacuates them, due in the new 30 minutes.
    blue = post(city_client, city_keys["operator"], warning("NJ-O", hazard="other", level="blue"), 201)
    assert blue["orders"]["total"] == 0 and blue["result"]["orders"]["targets"] > 0
    red = post(city_client, city_keys["operator"], warning("NJ-O", hazard="other", level="red"), 200)
    got = orders(url, red["id"])
    assert set(got) == expected_targets(url, AREA, set(), {"gas"})
    assert all(o["action"] == "evacuate" for o in got.values())
    assert all(abs((o["due_at"] - o["created_at"]).total_seconds() - 1800) < 5 for o in got.values())
    with psycopg.connect(url) as conn:
        subjects = [r[0] for r in conn.execute("SELECT subject FROM warning_rule_changes ORDER BY id")]
    assert subjects == ["rules:other", "due_times"]


def test_summary_closure_and_overdue(city_client, targets, city_keys):
    url = targets
    wid = post(city_client, city_keys["operator"], warning("NJ-S"), 201)["id"]
    got = sorted(orders(url, wid).values(), key=lambda o: o["id"])
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE work_orders SET status = 'done', done_note = 'x' WHERE id = ANY(%s)",
            ([o["id"] for o in got[:4]],),
        )
        conn.execute(
            "UPDATE work_orders SET status = 'cancelled', cancel_cause = 'manual' WHERE id = %s",
            (got[4]["id"],),
        )
        conn.execute(
            "UPDATE work_orders SET due_at = now() - interval '1 minute' WHERE id = ANY(%s)",
            ([o["id"] for o in got[3:8]],),
        )
    s = city_client.get(f"/warnings/{wid}").json()["orders"]
    assert s["by_status"]["done"] == 4 and s["by_status"]["cancelled"] == 1
    assert s["closure_rate"] == round(4 / (len(got) - 1), 4)
    assert s["overdue"] == 3  # ids 5..7: one of the five is done, one cancelled


def test_list_warnings_as_geojson(city_client, targets, city_keys):
    op = city_keys["operator"]
    post(city_client, op, warning("NJ-L1", level="red"), 201)
    post(city_client, op, warning("NJ-L2", level="blue", hazard="fog"), 201)
    wid = post(city_client, op, warning("NJ-L3", level="yellow", hazard="gale"), 201)["id"]
    city_client.post(f"/warnings/{wid}/cancel", headers=bearer(op))
    r = city_client.get("/warnings")
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["numberMatched"] == 3 and fc["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert {
        f["properties"]["identifier"] for f in city_client.get("/warnings?status=active").json()["features"]
    } == {
        "NJ-L1",
        "NJ-L2",
    }
    assert [f["id"] for f in city_client.get("/warnings?status=cancelled").json()["features"]] == [wid]
    assert [
        f["properties"]["level"] for f in city_client.get("/warnings?hazard_type=fog").json()["features"]
    ] == ["blue"]
    assert city_client.get("/warnings?bbox=116,39,117,40").json()["numberMatched"] == 0
    assert_problem(city_client.get("/warnings/999999"), 404)


def test_events_carry_new_and_changed_orders(city_client, targets, city_keys):
    url = targets
    with psycopg.connect(url) as conn:
        last = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    wid = post(city_client, city_keys["operator"], warning("NJ-E", level="yellow"), 201)["id"]
    n = len(orders(url, wid))
    post(city_client, city_keys["operator"], warning("NJ-E", level="orange"), 200)
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT kind, payload FROM events WHERE id > %s ORDER BY id", (last,)).fetchall()
    wo = [p for k, p in rows if k == "work_order"]
    assert [p["op"] for p in wo] == ["created"] * n + ["updated"] * n
    assert all(p["warning"] == wid and p["layer"] == "comprehensive" and p["cell"] for p in wo)
    assert {p["action"] for p in wo[n:]} == {"patrol_prepare_evacuation"}
    assert [(p["op"], p["level"]) for k, p in rows if k == "warning"] == [
        ("created", "yellow"),
        ("updated", "orange"),
    ]
