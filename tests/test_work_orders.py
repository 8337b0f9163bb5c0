"""Work orders: a worker key sees and moves only its own cells' orders; the state machine with
If-Match, notes, locations and history; filters; the map's GeoJSON; key-to-cell links (API, CLI)."""

from __future__ import annotations

import os

import psycopg
import pytest
from conftest import assert_problem, bearer
from test_warnings import post, seed_shelters, seed_targets, warning
from typer.testing import CliRunner

from gridrisk.api_keys import create_key


@pytest.fixture
def issued(city_client, city_db_url, city_keys):
    """A red rainstorm warning over the test city with its orders, and a worker key linked (via the
    API) to the cell holding the most orders."""
    seed_targets(city_db_url)
    seed_shelters(city_db_url)
    wid = post(city_client, city_keys["operator"], warning("NJ-WO"), 201)["id"]
    with psycopg.connect(city_db_url) as conn:
        cell, others = conn.execute(
            "SELECT cell_code, (SELECT count(*) FROM work_orders o2 WHERE o2.cell_code <> o.cell_code)"
            " FROM work_orders o WHERE warning_id = %s GROUP BY cell_code"
            " ORDER BY count(*) DESC, cell_code LIMIT 1",
            (wid,),
        ).fetchone()
        key_id, key = create_key(conn, "巡查员 张三", "worker")
    assert others > 0
    r = city_client.put(
        f"/api-keys/{key_id}/cells",
        json={"cells": [{"layer": "comprehensive", "code": cell}]},
        headers=bearer(city_keys["admin"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["cells"] == [{"layer": "comprehensive", "code": cell}]
    return {"warning": wid, "cell": cell, "key": key, "key_id": key_id, "url": city_db_url}


def _ids(url: str, where: str, *args) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(f"SELECT id FROM work_orders WHERE {where} ORDER BY id", args)]


def _patch(client, key: str, order: dict, body: dict, status: int = 200):
    r = client.patch(
        f"/work-orders/{order['id']}", json=body, headers={**bearer(key), "If-Match": f'"{order["version"]}"'}
    )
    assert r.status_code == status, r.text
    return r


def test_a_worker_sees_and_changes_only_its_own_cells(city_client, issued, city_keys):
    w = bearer(issued["key"])
    mine = _ids(issued["url"], "cell_code = %s", issued["cell"])
    theirs = _ids(issued["url"], "cell_code <> %s", issued["cell"])
    page = city_client.get("/work-orders?limit=1000", headers=w).json()
    assert sorted(o["id"] for o in page["items"]) == mine and page["numberMatched"] == len(mine)
    assert {o["cell"]["code"] for o in page["items"]} == {issued["cell"]}
    assert any(a["name"] == "巡查员 张三" and a["has_key"] for a in page["items"][0]["assignees"])
    # Another cell's order: 403 to read, to change, and for its history.
    other = theirs[0]
    assert_problem(city_client.get(f"/work-orders/{other}", headers=w), 403)
    r = city_client.patch(
        f"/work-orders/{other}", json={"status": "acknowledged"}, headers={**w, "If-Match": '"1"'}
    )
    assert_problem(r, 403)
    assert_problem(city_client.get(f"/work-orders/{other}/history", headers=w), 403)
    with psycopg.connect(issued["url"]) as conn:
        other_cell = conn.execute("SELECT cell_code FROM work_orders WHERE id = %s", (other,)).fetchone()[0]
    assert_problem(city_client.get(f"/work-orders?cell={other_cell}", headers=w), 403)
    assert city_client.get(f"/work-orders?cell={issued['cell']}", headers=w).json()["numberMatched"] == len(
        mine
    )
    with psycopg.connect(issued["url"]) as conn:
        assert conn.execute("SELECT status, version FROM work_orders WHERE id = %s", (other,)).fetchone() == (
            "open",
            1,
        )
    # The map's GeoJSON is scoped the same way; operators see everything.
    fc = city_client.get(f"/warnings/{issued['warning']}/work-orders.geojson", headers=w).json()
    assert sorted(f["id"] for f in fc["features"]) == mine
    fc = city_client.get(
        f"/warnings/{issued['warning']}/work-orders.geojson", headers=bearer(city_keys["operator"])
    ).json()
    assert len(fc["features"]) == len(mine) + len(theirs)
    assert {f["properties"]["status"] for f in fc["features"]} == {"open"}
    # A worker key with no cells sees nothing; a viewer and the public see no orders at all.
    assert city_client.get("/work-orders", headers=bearer(city_keys["worker"])).json()["numberMatched"] == 0
    assert_problem(city_client.get("/work-orders", headers=bearer(city_keys["viewer"])), 403)
    assert_problem(city_client.get("/work-orders"), 401)
    assert_problem(city_client.get(f"/warnings/{issued['warning']}/work-orders.geojson"), 401)
    # Operators see all; assignee=me is the operator's own (no) cells.
    op = bearer(city_keys["operator"])
    assert city_client.get("/work-orders?limit=1", headers=op).json()["numberMatched"] == len(mine) + len(
        theirs
    )
    assert city_client.get("/work-orders?assignee=me", headers=op).json()["numberMatched"] == 0
    assert city_client.get("/work-orders?assignee=me", headers=w).json()["numberMatched"] == len(mine)


def test_state_machine_with_if_match_notes_location_and_history(city_client, issued, city_keys):
    w = bearer(issued["key"])
    oid = _ids(issued["url"], "cell_code = %s", issued["cell"])[0]
    r = city_client.get(f"/work-orders/{oid}", headers=w)
    order = r.json()
    assert r.headers["etag"] == '"1"' and order["allowed_next"] == ["acknowledged", "cancelled"]
    # No If-Match: 428; stale: 412; a skipped step: 409 naming the allowed ones.
    assert_problem(city_client.patch(f"/work-orders/{oid}", json={"status": "acknowledged"}, headers=w), 428)
    r = city_client.patch(
        f"/work-orders/{oid}", json={"status": "acknowledged"}, headers={**w, "If-Match": '"7"'}
    )
    assert assert_problem(r, 412)["current_version"] == 1
    body = assert_problem(_patch(city_client, issued["key"], order, {"status": "in_progress"}, 409), 409)
    assert body["allowed"] == ["acknowledged", "cancelled"] and body["current"] == "open"
    # A worker cannot cancel.
    assert_problem(_patch(city_client, issued["key"], order, {"status": "cancelled", "note": "x"}, 403), 403)
    order = _patch(city_client, issued["key"], order, {"status": "acknowledged", "note": "收到"}).json()
    assert order["status"] == "acknowledged" and order["version"] == 2 and order["acknowledged_at"]
    order = _patch(city_client, issued["key"], order, {"status": "in_progress"}).json()
    # done needs a note, and from a worker a location inside the city.
    target = order["target"]["location"]["coordinates"]
    assert_problem(_patch(city_client, issued["key"], order, {"status": "done"}, 422), 422)
    body = assert_problem(
        _patch(city_client, issued["key"], order, {"status": "done", "note": "已转移"}, 422), 422
    )
    assert body["errors"][0]["field"] == "location"
    far = {"type": "Point", "coordinates": [116.4, 39.9]}
    assert_problem(
        _patch(city_client, issued["key"], order, {"status": "done", "note": "x", "location": far}, 422), 422
    )
    bad_url = {"status": "done", "note": "x", "photo_url": "ftp://x/y.jpg", "location": far}
    assert_problem(_patch(city_client, issued["key"], order, bad_url, 422), 422)
    here = {"type": "Point", "coordinates": [target[0] + 0.0005, target[1]]}
    done = _patch(
        city_client,
        issued["key"],
        order,
        {
            "status": "done",
            "note": "群众已全部转移",
            "photo_url": "https://img.example.cn/a.jpg",
            "location": here,
        },
    ).json()
    assert done["status"] == "done" and done["allowed_next"] == []
    assert (
        done["done"]["note"] == "群众已全部转移"
        and done["done"]["photo_url"] == "https://img.example.cn/a.jpg"
    )
    assert 40 < done["done"]["distance_m"] < 55  # 0.0005° of longitude at 32°N ≈ 47 m
    body = assert_problem(
        _patch(city_client, issued["key"], done, {"status": "cancelled", "note": "x"}, 409), 409
    )
    assert body["allowed"] == []
    history = city_client.get(f"/work-orders/{oid}/history", headers=w).json()
    assert [(h["op"], h["from_status"], h["to_status"]) for h in history] == [
        ("issued", None, "open"),
        ("transition", "open", "acknowledged"),
        ("transition", "acknowledged", "in_progress"),
        ("transition", "in_progress", "done"),
    ]
    assert history[-1]["location"]["coordinates"] == pytest.approx(here["coordinates"], abs=1e-7)
    assert history[-1]["distance_m"] > 40
    # Events carried each transition.
    with psycopg.connect(issued["url"]) as conn:
        statuses = [
            r[0]
            for r in conn.execute(
                "SELECT payload->>'status' FROM events WHERE kind = 'work_order'"
                " AND (payload->>'id')::bigint = %s ORDER BY id",
                (oid,),
            )
        ]
    assert statuses == ["open", "acknowledged", "in_progress", "done"]
    # The summary counts it.
    s = city_client.get(f"/warnings/{issued['warning']}").json()["orders"]
    assert s["by_status"]["done"] == 1 and s["closure_rate"] > 0


def test_operators_cancel_with_a_reason_and_close_without_location(city_client, issued, city_keys):
    op = city_keys["operator"]
    a, b = _ids(issued["url"], "true")[:2]
    order = city_client.get(f"/work-orders/{a}", headers=bearer(op)).json()
    assert_problem(_patch(city_client, op, order, {"status": "cancelled"}, 422), 422)
    order = _patch(city_client, op, order, {"status": "cancelled", "note": "重复登记"}).json()
    assert order["cancelled"]["cause"] == "manual" and order["cancelled"]["reason"] == "重复登记"
    # A manual cancellation survives a re-post of the warning.
    post(city_client, op, warning("NJ-WO"), 200)
    assert city_client.get(f"/work-orders/{a}", headers=bearer(op)).json()["status"] == "cancelled"
    order = city_client.get(f"/work-orders/{b}", headers=bearer(op)).json()
    for step in ("acknowledged", "in_progress"):
        order = _patch(city_client, op, order, {"status": step}).json()
    order = _patch(city_client, op, order, {"status": "done", "note": "电话确认已处置"}).json()
    assert order["done"]["location"] is None and order["done"]["by"] == "test-operator"
    assert_problem(city_client.get("/work-orders/999999", headers=bearer(op)), 404)


def test_filters_status_overdue_warning_cell(city_client, issued, city_keys):
    op = bearer(city_keys["operator"])
    url = issued["url"]
    all_ids = _ids(url, "true")
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE work_orders SET due_at = now() - interval '5 minutes' WHERE id = ANY(%s)", (all_ids[:3],)
        )
        conn.execute("UPDATE work_orders SET status = 'done', done_note = 'x' WHERE id = %s", (all_ids[0],))
    got = city_client.get("/work-orders?overdue=true", headers=op).json()
    assert sorted(o["id"] for o in got["items"]) == all_ids[1:3] and all(o["overdue"] for o in got["items"])
    assert (
        city_client.get("/work-orders?overdue=false", headers=op).json()["numberMatched"] == len(all_ids) - 2
    )
    assert [o["id"] for o in city_client.get("/work-orders?status=done", headers=op).json()["items"]] == [
        all_ids[0]
    ]
    both = city_client.get("/work-orders?status=done&status=open&limit=1", headers=op).json()
    assert both["numberMatched"] == len(all_ids) and len(both["items"]) == 1
    assert any(link["rel"] == "next" for link in both["links"])
    cell = city_client.get(f"/work-orders?cell={issued['cell']}", headers=op).json()
    assert cell["numberMatched"] == len(_ids(url, "cell_code = %s", issued["cell"]))
    assert city_client.get("/work-orders?warning=999", headers=op).json()["numberMatched"] == 0
    assert city_client.get(f"/work-orders?warning={issued['warning']}", headers=op).json()[
        "numberMatched"
    ] == len(all_ids)
    assert_problem(city_client.get("/work-orders?status=lost", headers=op), 422)
    assert_problem(city_client.get("/work-orders?assignee=you", headers=op), 422)


def test_key_cell_links_api_and_cli(city_client, issued, city_keys, monkeypatch):
    admin = bearer(city_keys["admin"])
    url = issued["url"]
    with psycopg.connect(url) as conn:
        a, b = [
            r[0]
            for r in conn.execute(
                "SELECT code FROM cells WHERE layer = 'comprehensive' ORDER BY code LIMIT 2"
            )
        ]
        demo_worker = conn.execute(
            "SELECT name FROM cell_workers WHERE layer = 'comprehensive' AND cell_code = %s", (b,)
        ).fetchone()[0]
        key_id, _ = create_key(conn, demo_worker, "worker")
    # Unknown cells: 422 and no change; only admins.
    bad = {"cells": [{"layer": "comprehensive", "code": "NOPE"}]}
    assert_problem(city_client.put(f"/api-keys/{key_id}/cells", json=bad, headers=admin), 422)
    with psycopg.connect(url) as conn:
        assert (
            conn.execute("SELECT count(*) FROM cell_workers WHERE api_key_id = %s", (key_id,)).fetchone()[0]
            == 0
        )
    good = {"cells": [{"layer": "comprehensive", "code": a}, {"layer": "comprehensive", "code": b}]}
    assert_problem(
        city_client.put(f"/api-keys/{key_id}/cells", json=good, headers=bearer(city_keys["operator"])), 403
    )
    assert_problem(city_client.put("/api-keys/987654/cells", json=good, headers=admin), 404)
    r = city_client.put(f"/api-keys/{key_id}/cells", json=good, headers=admin)
    assert r.status_code == 200 and len(r.json()["cells"]) == 2
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT cell_code, name FROM cell_workers WHERE api_key_id = %s ORDER BY cell_code", (key_id,)
        ).fetchall()
        # In cell b the demo worker of that name took the key; in cell a the holder was added.
        assert rows == [(a, demo_worker), (b, demo_worker)]
        assert conn.execute("SELECT count(*) FROM cell_workers WHERE cell_code = %s", (b,)).fetchone()[0] == 1
    r = city_client.put(f"/api-keys/{key_id}/cells", json={"cells": good["cells"][1:]}, headers=admin)
    assert r.json()["cells"] == [{"layer": "comprehensive", "code": b}]
    assert city_client.get(f"/api-keys/{key_id}/cells", headers=admin).json()["cells"] == r.json()["cells"]

    # The CLI: a worker key linked at creation; an unknown cell creates no key.
    monkeypatch.setenv("GRIDRISK_DATABASE_URL", url)
    from gridrisk.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["keys", "create", "--name", "李四", "--role", "worker", "--cell", f"comprehensive:{a}"]
    )
    assert res.exit_code == 0, res.output
    key = res.stdout.strip().splitlines()[-1]
    assert key.startswith("grk_")
    page = city_client.get("/work-orders", headers=bearer(key)).json()
    assert page["numberMatched"] == len(_ids(url, "cell_code = %s", a))
    with psycopg.connect(url) as conn:
        n_keys = conn.execute("SELECT count(*) FROM api_keys").fetchone()[0]
    res = runner.invoke(
        app, ["keys", "create", "--name", "王五", "--role", "worker", "--cell", "comprehensive:NOPE"]
    )
    assert res.exit_code == 1 and "NOPE" in res.output
    res = runner.invoke(app, ["keys", "create", "--name", "王五", "--role", "worker", "--cell", "nocolon"])
    assert res.exit_code == 1
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM api_keys").fetchone()[0] == n_keys
    assert os.environ["GRIDRISK_DATABASE_URL"] == url
