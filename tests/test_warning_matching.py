"""The matching of a warning's orders with teams, shelter places and supplies, against independent
computations on small cases: nearest capable team, optimal shelter split, stock never negative, no
double booking under concurrent posts, release when orders end, and expiry."""

from __future__ import annotations

import concurrent.futures

import psycopg
import pytest
from conftest import bearer, make_client
from pyproj import Geod
from test_warnings import post, warning

from gridrisk.db.sql_files import sql

GEOD = Geod(ellps="WGS84")
BOX = (118.78, 32.035, 118.83, 32.075)  # inside 玄武 / 秦淮, the small test city
AREA = {
    "type": "Polygon",
    "coordinates": [
        [[BOX[0], BOX[1]], [BOX[2], BOX[1]], [BOX[2], BOX[3]], [BOX[0], BOX[3]], [BOX[0], BOX[1]]]
    ],
}


def _insert(conn, table: str, rows: list[dict]) -> list[int]:
    ids = []
    for r in rows:
        cols = {k: v for k, v in r.items() if k not in ("lon", "lat")}
        names = ", ".join(cols)
        marks = ", ".join(f"%({k})s" for k in cols)
        ids.append(
            conn.execute(
                f"INSERT INTO {table} ({names}, geom, created_by, updated_by) VALUES ({marks},"
                " ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326), 't', 't') RETURNING id",
                r,
            ).fetchone()[0]
        )
    return ids


def _site(code, kind, lon, lat, persons):
    return {"code": code, "name": code, "kind": kind, "persons": persons, "lon": lon, "lat": lat}


def _team(code, caps, lon, lat, status="available"):
    return {"code": code, "name": code, "team_type": "professional", "sector": "防汛", "capabilities": caps,
            "members": 10, "status": status, "lon": lon, "lat": lat}  # fmt: skip


def _shelter(code, capacity, lon, lat, occupancy=0, status="standby"):
    return {"code": code, "name": code, "class": "emergency", "capacity": capacity, "occupancy": occupancy,
            "status": status, "lon": lon, "lat": lat}  # fmt: skip


def _depot(code, stock, lon, lat):
    from psycopg.types.json import Jsonb

    return {"code": code, "name": code, "level": "street", "stock": Jsonb(stock), "lon": lon, "lat": lat}


@pytest.fixture
def scene(city_db_url):
    """Underpasses and low-lying blocks in the box (a red rainstorm evacuates them, needing water rescue
    and, at patrol, sandbags), teams in and around it, a few small shelters, two small depots."""
    with psycopg.connect(city_db_url) as conn:
        sites = _insert(conn, "vulnerable_sites", [
            _site("UP-1", "underpass", 118.790, 32.040, 30),
            _site("UP-2", "underpass", 118.820, 32.070, 45),
            _site("LB-1", "low_lying_block", 118.800, 32.060, 700),
            _site("LB-2", "low_lying_block", 118.825, 32.045, 400),
            _site("UP-3", "underpass", 118.805, 32.050, 20),
        ])  # fmt: skip
        teams = _insert(conn, "rescue_teams", [
            _team("T-WR-1", ["water_rescue"], 118.795, 32.045),
            _team("T-WR-2", ["water_rescue", "pumping"], 118.830, 32.072),
            _team("T-WR-3", ["water_rescue"], 118.760, 32.020),
            _team("T-MED", ["medical"], 118.800, 32.055),  # closest to many, but cannot do water rescue
            _team("T-OFF", ["water_rescue"], 118.801, 32.061, status="off_duty"),
        ])  # fmt: skip
        shelters = _insert(conn, "shelters", [
            _shelter("S-A", 500, 118.795, 32.062),
            _shelter("S-B", 300, 118.815, 32.050, occupancy=100),
            _shelter("S-C", 400, 118.780, 32.030),
            _shelter("S-D", 900, 118.850, 32.080, status="closed"),
        ])  # fmt: skip
        depots = _insert(conn, "supply_depots", [
            _depot("D-1", {"sandbags": 300, "tents": 100, "quilts": 200}, 118.800, 32.050),
            _depot("D-2", {"sandbags": 500, "quilts": 2000}, 118.760, 32.030),
        ])  # fmt: skip
    return {"url": city_db_url, "sites": sites, "teams": teams, "shelters": shelters, "depots": depots}


def _rows(url: str, query: str, *args) -> list[dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query, args).fetchall()


def _orders(url: str, warning_id: int) -> list[dict]:
    return _rows(
        url,
        "SELECT o.*, ST_X(o.geom) AS lon, ST_Y(o.geom) AS lat FROM work_orders o WHERE warning_id = %s"
        " AND status <> 'cancelled' ORDER BY id",
        warning_id,
    )


def _short(order: dict, need: str) -> int:
    """How much of NEED the order's notes say could not be booked."""
    return sum(n["short"] for n in order["match_notes"] if n["need"] == need)


def _metres(a: dict, b: dict) -> float:
    return GEOD.inv(a["lon"], a["lat"], b["lon"], b["lat"])[2]


def _need_teams(orders: list[dict]) -> list[dict]:
    """The orders needing water rescue (red rainstorm: underpasses and low-lying blocks evacuate), in the
    matching's priority: strongest action, most people, then id."""
    needing = [
        o
        for o in orders
        if o["target_kind"] in ("underpass", "low_lying_block") and o["action"] == "evacuate"
    ]
    return sorted(needing, key=lambda o: (-o["threatened_persons"], o["id"]))


def test_each_need_gets_the_nearest_available_capable_team(city_client, city_keys, scene):
    url = scene["url"]
    body = post(city_client, city_keys["operator"], warning("M-TEAM", area={"geometry": AREA}), 201)
    orders = _orders(url, body["id"])
    teams = _rows(
        url, "SELECT id, code, capabilities, status, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM rescue_teams"
    )
    free = [t for t in teams if "water_rescue" in t["capabilities"] and t["status"] == "available"]
    expected = {}
    for o in _need_teams(orders):  # independent greedy: true distance, lowest id on a tie
        if not free:
            break
        best = min(free, key=lambda t: (GEOD.inv(o["lon"], o["lat"], t["lon"], t["lat"])[2], t["id"]))
        expected[o["id"]] = (best["id"], GEOD.inv(o["lon"], o["lat"], best["lon"], best["lat"])[2])
        free.remove(best)
    booked = _rows(
        url, "SELECT order_id, team_id, distance_m FROM work_order_teams WHERE capability = 'water_rescue'"
    )
    assert {b["order_id"]: b["team_id"] for b in booked} == {k: v[0] for k, v in expected.items()}
    for b in booked:
        assert abs(b["distance_m"] - expected[b["order_id"]][1]) < 0.01
    # Three teams can rescue, five places need them: two orders say no team was available.
    short = [
        o for o in _orders(url, body["id"]) if any(n["need"] == "team:water_rescue" for n in o["match_notes"])
    ]
    assert len(expected) == 3 and len(short) == 2
    team = city_client.get(f"/rescue-teams/{booked[0]['team_id']}").json()["properties"]
    assert team["status"] == "deployed" and team["booking"]["order_id"] == booked[0]["order_id"]
    # A deployed team cannot be closed.
    r = city_client.delete(f"/rescue-teams/{booked[0]['team_id']}", headers=bearer(city_keys["operator"]))
    assert r.status_code == 409


def min_cost_placement(demand: dict[int, int], free: dict[int, int], dist: dict[tuple[int, int], float]):
    """Independent of the code under test: successive shortest paths (Bellman-Ford) on the residual
    network source → groups → shelters → sink; returns (people placed, total person-metres)."""
    nodes = ["s", *[("g", g) for g in demand], *[("h", h) for h in free], "t"]
    cap, cost = {}, {}

    def edge(u, v, c, w):
        cap[(u, v)] = cap.get((u, v), 0) + c
        cost[(u, v)], cost[(v, u)] = w, -w
        cap.setdefault((v, u), 0)

    for g, n in demand.items():
        edge("s", ("g", g), n, 0.0)
    for h, n in free.items():
        edge(("h", h), "t", n, 0.0)
    for (g, h), d in dist.items():
        edge(("g", g), ("h", h), 10**9, d)
    flow = total = 0
    while True:
        best = {u: float("inf") for u in nodes}
        prev: dict = {}
        best["s"] = 0.0
        for _ in range(len(nodes)):
            changed = False
            for (u, v), c in cap.items():
                if c > 0 and best[u] + cost[(u, v)] < best[v] - 1e-9:
                    best[v], prev[v], changed = best[u] + cost[(u, v)], u, True
            if not changed:
                break
        if best["t"] == float("inf"):
            return flow, total
        path, v = [], "t"
        while v != "s":
            path.append((prev[v], v))
            v = prev[v]
        push = min(cap[e] for e in path)
        for u, v in path:
            cap[(u, v)] -= push
            cap[(v, u)] += push
        flow += push
        total += push * best["t"]


def test_evacuees_are_placed_within_capacity_and_at_least_total_distance(city_client, city_keys, scene):
    url = scene["url"]
    body = post(city_client, city_keys["operator"], warning("M-EVAC", area={"geometry": AREA}), 201)
    evac = [o for o in _orders(url, body["id"]) if o["action"] == "evacuate" and o["threatened_persons"] > 0]
    shelters = _rows(url, "SELECT id, capacity - occupancy AS free, status, ST_X(geom) AS lon, ST_Y(geom) lat"
                     " FROM shelters")  # fmt: skip
    open_ = [s for s in shelters if s["status"] in ("open", "standby")]
    demand = {o["id"]: o["threatened_persons"] for o in evac}
    free = {s["id"]: s["free"] for s in open_}
    dist = {
        (o["id"], s["id"]): GEOD.inv(o["lon"], o["lat"], s["lon"], s["lat"])[2] for o in evac for s in open_
    }
    placed_max, metres_min = min_cost_placement(demand, free, dist)
    got = _rows(
        url, "SELECT order_id, shelter_id, persons FROM shelter_reservations WHERE released_at IS NULL"
    )
    per_shelter, per_order = {}, {}
    for r in got:
        per_shelter[r["shelter_id"]] = per_shelter.get(r["shelter_id"], 0) + r["persons"]
        per_order[r["order_id"]] = per_order.get(r["order_id"], 0) + r["persons"]
    assert all(per_shelter[s] <= free[s] for s in per_shelter)  # never over capacity (closed one unused)
    assert all(per_order[o] <= demand[o] for o in per_order)
    assert sum(per_order.values()) == placed_max == min(sum(demand.values()), sum(free.values()))
    metres = sum(r["persons"] * dist[(r["order_id"], r["shelter_id"])] for r in got)
    assert metres == pytest.approx(metres_min, rel=1e-6)
    # 1,195 people, 1,100 places: the shortfall is said on the orders and in the summary.
    short = sum(
        n["short"] for o in _orders(url, body["id"]) for n in o["match_notes"] if n["need"] == "shelter"
    )
    assert short == sum(demand.values()) - placed_max == 95
    evacuation = city_client.get(f"/warnings/{body['id']}").json()["evacuation"]
    assert evacuation["persons_placed"] == placed_max and evacuation["without_shelter"] >= 1
    assert not any(s["overbooked"] for s in evacuation["shelters"])
    split = [o for o in evac if len([r for r in got if r["order_id"] == o["id"]]) > 1]
    detail = city_client.get(f"/work-orders/{split[0]['id']}", headers=bearer(city_keys["operator"])).json()
    assert len(detail["shelter"]["places"]) > 1 and detail["responsible"]["unit"]


def test_supplies_come_from_the_nearest_depots_and_stock_never_goes_negative(city_client, city_keys, scene):
    url = scene["url"]
    body = post(city_client, city_keys["operator"], warning("M-SUP", area={"geometry": AREA}), 201)
    got = _rows(url, "SELECT depot_id, item, sum(quantity)::int AS q FROM supply_reservations"
                " WHERE released_at IS NULL GROUP BY 1, 2")  # fmt: skip
    stock = {d["id"]: d["stock"] for d in _rows(url, "SELECT id, stock FROM supply_depots")}
    for r in got:
        assert r["q"] <= stock[r["depot_id"]][r["item"]]
    # Three underpasses × 200 sandbags = 600 wanted, 800 held: all reserved, the nearer depot first.
    sandbags = {r["depot_id"]: r["q"] for r in got if r["item"] == "sandbags"}
    assert sum(sandbags.values()) == 600 and sandbags[scene["depots"][0]] == 300
    # Tents at 1 per 4 evacuees: 100 held, more wanted; the shortfall is noted, never a negative stock.
    tents = sum(r["q"] for r in got if r["item"] == "tents")
    noted = sum(
        n["short"] for o in _orders(url, body["id"]) for n in o["match_notes"] if n["need"] == "item:tents"
    )
    assert tents == 100 and noted > 0
    depot = city_client.get(f"/supply-depots/{scene['depots'][0]}").json()["properties"]["stock"]
    assert depot["tents"]["free"] == 0 and depot["sandbags"]["reserved"] == 300
    # Stock cannot be set below what is reserved.
    r = city_client.patch(f"/supply-depots/{scene['depots'][0]}", json={"stock": {"tents": 10}},
                          headers={**bearer(city_keys["operator"]), "If-Match": '"1"'})  # fmt: skip
    assert r.status_code == 409 and r.json()["errors"][0]["field"].startswith("stock.")


def test_repost_keeps_bookings_and_ending_orders_releases_them(city_client, city_keys, scene):
    url, op = scene["url"], city_keys["operator"]
    body = post(city_client, op, warning("M-LOOP", area={"geometry": AREA}), 201)
    snapshot = " UNION ALL ".join(
        f"SELECT array_agg(id ORDER BY id) AS ids FROM {t}"
        for t in ("work_order_teams", "shelter_reservations", "supply_reservations")
    )
    before = _rows(url, snapshot)
    again = post(city_client, op, warning("M-LOOP", area={"geometry": AREA}), 200)
    assert again["result"]["matching"]["teams_booked"] == 0 and _rows(url, snapshot) == before
    # One order done: its team is free, its places go back, its supplies are drawn from the stock.
    order = next(o for o in _orders(url, body["id"])
                 if _rows(url, "SELECT 1 FROM supply_reservations WHERE order_id = %s", o["id"]))  # fmt: skip
    drawn = _rows(
        url, "SELECT depot_id, item, quantity FROM supply_reservations WHERE order_id = %s", order["id"]
    )
    stock_before = {d["id"]: d["stock"] for d in _rows(url, "SELECT id, stock FROM supply_depots")}
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE work_orders SET status = 'done', done_note = 'ok', done_at = now()"
                     " WHERE id = %s",
                     (order["id"],))  # fmt: skip
    stock_after = {d["id"]: d["stock"] for d in _rows(url, "SELECT id, stock FROM supply_depots")}
    for d in drawn:
        assert stock_after[d["depot_id"]][d["item"]] == stock_before[d["depot_id"]][d["item"]] - d["quantity"]
    assert not _rows(
        url, "SELECT 1 FROM supply_reservations WHERE order_id = %s AND released_at IS NULL", order["id"]
    )
    # Cancel the warning: every booking is released, every team available again.
    r = city_client.post(f"/warnings/{body['id']}/cancel", json={"reason": "解除"}, headers=bearer(op))
    assert r.status_code == 200, r.text
    for table in ("work_order_teams", "shelter_reservations", "supply_reservations"):
        assert not _rows(url, f"SELECT 1 FROM {table} WHERE released_at IS NULL")
    teams = city_client.get("/rescue-teams", params={"status": "deployed"}).json()
    assert teams["numberMatched"] == 0
    stock_final = {d["id"]: d["stock"] for d in _rows(url, "SELECT id, stock FROM supply_depots")}
    assert stock_final == stock_after  # cancelled reservations go back untouched


def test_concurrent_warnings_never_double_book(city_db_url, city_keys, scene):
    url = scene["url"]
    op = city_keys["operator"]
    bodies = [warning(f"M-CONC-{i}", area={"geometry": AREA}) for i in range(4)]
    clients = [make_client(url) for _ in bodies]
    try:
        for c in clients:
            c.__enter__()
        with concurrent.futures.ThreadPoolExecutor(len(bodies)) as pool:
            results = list(
                pool.map(lambda cb: post(cb[0], op, cb[1], 201), zip(clients, bodies, strict=True))
            )
    finally:
        for c in clients:
            c.__exit__(None, None, None)
    assert len({r["id"] for r in results}) == 4
    live_teams = _rows(
        url, "SELECT team_id, count(*) AS n FROM work_order_teams WHERE released_at IS NULL GROUP BY 1"
    )
    assert live_teams and all(t["n"] == 1 for t in live_teams)
    assert len(live_teams) == 3  # every capable, available team booked once, by one of the warnings
    free = {s["id"]: s["free"] for s in _rows(url, "SELECT id, capacity - occupancy AS free FROM shelters")}
    for r in _rows(url, "SELECT shelter_id, sum(persons)::int AS p FROM shelter_reservations"
                   " WHERE released_at IS NULL GROUP BY 1"):  # fmt: skip
        assert r["p"] <= free[r["shelter_id"]]
    stock = {d["id"]: d["stock"] for d in _rows(url, "SELECT id, stock FROM supply_depots")}
    for r in _rows(url, "SELECT depot_id, item, sum(quantity)::int AS q FROM supply_reservations"
                   " WHERE released_at IS NULL GROUP BY 1, 2"):  # fmt: skip
        assert r["q"] <= stock[r["depot_id"]][r["item"]]


def test_expired_warnings_end_their_orders_and_release_bookings(city_client, city_keys, scene):
    from typer.testing import CliRunner

    from gridrisk.cli import app

    url = scene["url"]
    body = post(city_client, city_keys["operator"], warning("M-EXP", area={"geometry": AREA}), 201)
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE warnings SET valid_until = now() - interval '1 minute',"
            " valid_from = now() - interval '2 hours' WHERE id = %s",
            (body["id"],),
        )
    out = CliRunner().invoke(app, ["warnings", "expire"], env={"GRIDRISK_DATABASE_URL": url})
    assert out.exit_code == 0, out.output
    rows = _rows(url, "SELECT status, cancel_cause FROM work_orders WHERE warning_id = %s", body["id"])
    assert rows and all((r["status"], r["cancel_cause"]) == ("cancelled", "expired") for r in rows)
    for table in ("work_order_teams", "shelter_reservations", "supply_reservations"):
        assert not _rows(url, f"SELECT 1 FROM {table} WHERE released_at IS NULL")
    history = _rows(url, "SELECT count(*) AS n FROM work_order_history h JOIN work_orders o"
                    " ON o.id = h.order_id"
                    " WHERE o.warning_id = %s AND h.op = 'expired'", body["id"])  # fmt: skip
    assert history[0]["n"] == len(rows)
    again = CliRunner().invoke(app, ["warnings", "expire"], env={"GRIDRISK_DATABASE_URL": url})
    assert "0 order" in again.output


def test_the_closed_loop_report_in_json_and_csv(city_client, city_keys, scene):
    import csv
    import io

    url, op = scene["url"], city_keys["operator"]
    body = post(city_client, op, warning("M-REPORT", area={"geometry": AREA}), 201)
    orders = _orders(url, body["id"])
    with psycopg.connect(url) as conn:  # one order acknowledged after 10 minutes, one done after 30
        conn.execute(
            "UPDATE work_orders SET status = 'acknowledged',"
            " acknowledged_at = created_at + interval '10 minutes' WHERE id = %s",
            (orders[0]["id"],),
        )
        conn.execute(
            "UPDATE work_orders SET status = 'done', acknowledged_at = created_at + interval '5 minutes',"
            " done_at = created_at + interval '30 minutes', done_note = 'ok' WHERE id = %s",
            (orders[1]["id"],),
        )
    report = city_client.get(f"/warnings/{body['id']}/report").json()
    city = report["city"]
    assert city["orders"] == len(orders) and city["done"] == 1 and city["acknowledged"] == 1
    assert city["ack_p50_min"] == pytest.approx(7.5) and city["done_p50_min"] == pytest.approx(30)
    planned = sum(o["threatened_persons"] for o in orders if o["action"] == "evacuate")
    evacuated = orders[1]["threatened_persons"] if orders[1]["action"] == "evacuate" else 0
    assert city["persons_planned"] == planned and city["persons_evacuated"] == evacuated
    assert sum(d["orders"] for d in report["districts"]) == city["orders"]
    assert sum(c["orders"] for c in report["cells"]) == city["orders"]
    booked = _rows(url, "SELECT count(*) AS n FROM work_order_teams")[0]["n"]
    assert city["teams_committed"] == booked == len(report["teams"])
    assert {t["team_id"] for t in report["teams"]} <= set(scene["teams"])
    assert {d["depot_id"] for d in report["supplies"]} <= set(scene["depots"])
    r = city_client.get(f"/warnings/{body['id']}/report", params={"f": "csv"})
    assert r.headers["content-type"].startswith("text/csv") and r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["范围 scope", "编码 code", "名称 name"]
    assert len(rows) == 1 + 1 + len(report["districts"]) + len(report["cells"])
    assert rows[1][0] == "city" and int(rows[1][3]) == city["orders"]
    assert city_client.get("/warnings/987654/report").status_code == 404


def test_reserved_places_are_not_offered_as_free(city_client, city_keys, scene):
    url = scene["url"]
    post(city_client, city_keys["operator"], warning("M-FREE", area={"geometry": AREA}), 201)
    held = {
        r["shelter_id"]: r["p"]
        for r in _rows(url, "SELECT shelter_id, sum(persons)::int AS p FROM shelter_reservations GROUP BY 1")
    }
    shelter_id = max(held, key=held.get)
    props = city_client.get(f"/shelters/{shelter_id}").json()["properties"]
    assert props["reserved"] == held[shelter_id]
    assert props["free"] == max(props["capacity"] - props["occupancy"] - held[shelter_id], 0)
    near = city_client.get("/shelters/nearest", params={"lon": 118.80, "lat": 32.05, "limit": 10}).json()
    for f in near["features"]:
        p = f["properties"]
        assert p["free"] == max(p["capacity"] - p["occupancy"] - held.get(f["id"], 0), 0)
    wanted = city_client.get("/shelters", params={"min_free": 1}).json()
    assert all(f["properties"]["free"] >= 1 for f in wanted["features"])


def test_nearest_looks_past_shelters_whose_places_are_all_held(city_client, city_keys, scene):
    """Held places are summed for the index's first candidates only; when they rule out so many that
    fewer than asked remain, the search widens to every shelter, so the answer is still exact."""
    url = scene["url"]
    post(city_client, city_keys["operator"], warning("M-HELD", area={"geometry": AREA}), 201)
    order_id = _rows(url, "SELECT min(order_id) AS o FROM shelter_reservations")[0]["o"]
    here = (118.7955, 32.0625)
    with psycopg.connect(url) as conn:  # 30 small shelters around HERE, every place held
        ring = _insert(conn, "shelters", [
            _shelter(f"S-H{i:02d}", 10, here[0] + 0.0004 * (i % 6), here[1] + 0.0004 * (i // 6))
            for i in range(30)
        ])  # fmt: skip
        _insert(conn, "shelters", [  # farther out, nothing held
            _shelter(f"S-F{i}", 50, here[0] + 0.01 * (i + 1), here[1] - 0.004 * i) for i in range(4)
        ])  # fmt: skip
        for sid in ring:
            conn.execute(
                "INSERT INTO shelter_reservations (order_id, shelter_id, persons, distance_m)"
                " VALUES (%s, %s, 10, 0)",
                (order_id, sid),
            )
    expected = _rows(
        url,
        "SELECT s.id FROM shelters s WHERE s.status IN ('open', 'standby')"
        " AND s.capacity - s.occupancy - shelter_reserved(s.id) >= 1"
        " ORDER BY ST_Distance(s.geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography), s.id"
        " LIMIT 3",
        *here,
    )
    near = city_client.get(
        "/shelters/nearest", params={"lon": here[0], "lat": here[1], "limit": 3, "min_free": 1}
    ).json()
    assert [f["id"] for f in near["features"]] == [r["id"] for r in expected]
    assert len(expected) == 3 and not set(ring) & {r["id"] for r in expected}
    assert all(f["properties"]["free"] >= 1 for f in near["features"])
    # Without min_free the held shelters are listed, nearest first, with no place free.
    listed = city_client.get("/shelters/nearest", params={"lon": here[0], "lat": here[1], "limit": 3}).json()
    assert {f["id"] for f in listed["features"]} <= set(ring)
    assert all(f["properties"]["free"] == 0 and f["properties"]["reserved"] == 10 for f in listed["features"])


def test_a_risk_source_evacuation_plans_its_people(city_client, city_keys, scene):
    """Risk sources carry the people on site: a city that evacuates construction sites under a red
    rainstorm gets orders for those people, with shelter places reserved for them."""
    url, operator = scene["url"], bearer(city_keys["operator"])
    site = {
        "code": "CS-EVAC",
        "name": "测试在建工地",
        "category": "construction_site",
        "geometry": {"type": "Point", "coordinates": [118.812, 32.058]},
        "assessment": {"method": "LEC", "L": 3, "E": 6, "C": 7},
        "persons": 250,
    }
    r = city_client.post("/risk-sources", json=site, headers=operator)
    assert r.status_code == 201, r.text
    sid, version = r.json()["id"], r.json()["properties"]["version"]
    assert r.json()["properties"]["persons"] == 250
    # The people on site are the registry's to keep: never null, never negative, and recorded.
    for bad in ({"persons": None}, {"persons": -1}, {"persons": "many"}):
        got = city_client.patch(
            f"/risk-sources/{sid}", json=bad, headers={**operator, "If-Match": f'"{version}"'}
        )
        assert got.status_code == 422 and "persons" in got.text, got.text
    r = city_client.patch(
        f"/risk-sources/{sid}", json={"persons": 260}, headers={**operator, "If-Match": f'"{version}"'}
    )
    assert r.status_code == 200 and r.json()["properties"]["persons"] == 260
    history = city_client.get(f"/risk-sources/{sid}/history").json()
    assert history[-1]["changes"]["persons"] == [250, 260]

    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE warning_rules SET action_red = 'evacuate' WHERE hazard_type = 'rainstorm'"
            " AND target_type = 'risk_source' AND target_kind = 'construction_site'"
        )
    body = post(city_client, city_keys["operator"], warning("M-CS-EVAC", area={"geometry": AREA}), 201)
    (order,) = [
        o
        for o in _orders(url, body["id"])
        if o["target_type"] == "risk_source" and o["target_code"] == "CS-EVAC"
    ]
    assert order["action"] == "evacuate" and order["threatened_persons"] == 260
    placed = _rows(
        url,
        "SELECT coalesce(sum(persons), 0)::int AS n FROM shelter_reservations WHERE order_id = %s",
        order["id"],
    )[0]["n"]
    assert placed + _short(order, "shelter") == 260 and placed > 0


def test_evacuees_checking_in_use_up_their_reservation(city_client, city_keys, scene):
    """People checked in with their order's id move from reserved to occupied: the shelter's free
    places stay true (not counted twice), walk-ins take free places, and the matching sees the same."""
    url, worker = scene["url"], bearer(city_keys["worker"])
    body = post(city_client, city_keys["operator"], warning("M-CHECKIN", area={"geometry": AREA}), 201)
    booked = _rows(
        url,
        "SELECT r.order_id, r.shelter_id, r.persons FROM shelter_reservations r JOIN work_orders o"
        " ON o.id = r.order_id WHERE o.warning_id = %s AND r.released_at IS NULL AND r.persons >= 5"
        " ORDER BY r.persons DESC LIMIT 1",
        body["id"],
    )[0]
    sid, oid, persons = booked["shelter_id"], booked["order_id"], booked["persons"]
    with psycopg.connect(url) as conn:
        # Open, and 50 places beyond what the warning reserved (the scene's shelters are all booked).
        conn.execute("UPDATE shelters SET status = 'open', capacity = capacity + 50 WHERE id = %s", (sid,))

    def shelter() -> dict:
        return city_client.get(f"/shelters/{sid}").json()["properties"]

    before = shelter()
    assert before["reserved"] >= persons and before["free"] == 50

    def check_in(delta: int, order: int | None = None) -> dict:
        sent = {"delta": delta, **({"order_id": order} if order else {})}
        r = city_client.post(f"/shelters/{sid}/occupancy", json=sent, headers=worker)
        assert r.status_code == 200, r.text
        return r.json()

    got = check_in(3, oid)  # three of the order's evacuees arrive
    assert got["reservation_used"] == 3 and got["reserved"] == before["reserved"] - 3
    after = shelter()
    assert after["occupancy"] == before["occupancy"] + 3 and after["reserved"] == before["reserved"] - 3
    assert after["free"] == before["free"]  # they had places already: nothing new is taken
    walk_in = check_in(1)
    assert walk_in["reservation_used"] == 0 and shelter()["free"] == before["free"] - 1
    rest = check_in(persons, oid)  # the rest of the group, and more than it had reserved
    assert rest["reservation_used"] == persons - 3
    now = shelter()
    assert now["reserved"] == before["reserved"] - persons
    assert now["free"] == before["free"] - 1 - 3  # the walk-in and the 3 beyond the reservation
    # The matching reads the same free places as the shelter shows.
    with psycopg.connect(url) as conn:
        matched = conn.execute(sql("warning_match_shelters_free"), {"ids": [sid]}).fetchall()
    assert (matched[0][1] if matched else 0) == now["free"]
    detail = city_client.get(f"/work-orders/{oid}", headers=bearer(city_keys["operator"])).json()
    (place,) = [p for p in detail["shelter"]["places"] if p["shelter_id"] == sid]
    assert place["checked_in"] == persons and place["persons"] == persons
    # An order id with no place here checks people in as walk-ins; a bad id is a 422, nothing written.
    assert check_in(1, 999_999)["reservation_used"] == 0
    r = city_client.post(f"/shelters/{sid}/occupancy", json={"delta": 1, "order_id": 0}, headers=worker)
    assert r.status_code == 422 and "order_id" in r.text
