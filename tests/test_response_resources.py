"""Vulnerable sites, rescue teams and supply depots: the derived registry, and what each kind adds."""

from __future__ import annotations

import io

import psycopg
import pytest
from conftest import assert_problem, bearer

XUANWU = (118.797, 32.060)  # inside the small demo city (玄武)


def _point(lon: float = XUANWU[0], lat: float = XUANWU[1]) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


SITE = {
    "code": "VS-1",
    "name": "玄武门小学",
    "kind": "school",
    "geometry": _point(),
    "persons": 900,
    "persons_assisted": 0,
    "contact_person": "王校长",
    "contact_phone": "025-83000000",
}
TEAM = {
    "code": "RT-1",
    "name": "玄武防汛抢险队",
    "team_type": "professional",
    "sector": "防汛抗旱",
    "capabilities": ["pumping", "water_rescue"],
    "members": 40,
    "equipment": ["排涝泵车", "冲锋舟"],
    "geometry": _point(118.80, 32.05),
}
DEPOT = {
    "code": "SD-1",
    "name": "玄武区救灾物资储备库",
    "level": "district",
    "geometry": _point(118.79, 32.07),
    "area_m2": 800,
    "stock": {"tents": 300, "sandbags": 5000},
}


def _counts(url: str) -> tuple[int, ...]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM vulnerable_sites), (SELECT count(*) FROM rescue_teams),"
            " (SELECT count(*) FROM supply_depots), (SELECT count(*) FROM vulnerable_site_history)"
            " + (SELECT count(*) FROM rescue_team_history) + (SELECT count(*) FROM supply_depot_history)"
        ).fetchone()


@pytest.mark.parametrize(
    ("path", "body"), [("/vulnerable-sites", SITE), ("/rescue-teams", TEAM), ("/supply-depots", DEPOT)]
)
def test_create_read_patch_close_with_history(city_client, city_keys, path, body):
    op = bearer(city_keys["operator"])
    r = city_client.post(path, json=body, headers=op)
    assert r.status_code == 201, r.text
    created = r.json()
    assert r.headers["ETag"] == '"1"' and created["properties"]["district"]["code"] == "320102"
    got = city_client.get(f"{path}/{created['id']}").json()
    assert got == created
    r = city_client.patch(f"{path}/{created['id']}", json={"name": "改名"}, headers={**op, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["properties"]["name"] == "改名", r.text
    assert_problem(
        city_client.patch(f"{path}/{created['id']}", json={"name": "x"}, headers={**op, "If-Match": '"1"'}),
        412,
    )
    r = city_client.delete(f"{path}/{created['id']}", headers=op)
    assert r.status_code == 200 and r.json()["properties"]["status"] == "closed"
    history = city_client.get(f"{path}/{created['id']}/history").json()
    assert [h["op"] for h in history] == ["create", "update", "close"]
    found = city_client.get(path, params={"q": "改名"}).json()
    assert [f["id"] for f in found["features"]] == [created["id"]]


BAD = [
    ("/vulnerable-sites", {**SITE, "kind": "castle"}, "kind"),
    ("/vulnerable-sites", {**SITE, "persons": 10, "persons_assisted": 11}, "persons_assisted"),
    ("/vulnerable-sites", {**SITE, "persons": -1}, "persons"),
    ("/rescue-teams", {**TEAM, "capabilities": ["teleportation"]}, "capabilities"),
    ("/rescue-teams", {**TEAM, "capabilities": []}, "capabilities"),
    ("/rescue-teams", {**TEAM, "members": -3}, "members"),
    ("/rescue-teams", {**TEAM, "geometry": _point(116.40, 39.90)}, "geometry"),  # Beijing: outside the city
    ("/rescue-teams", {**TEAM, "status": "deployed"}, "status"),
    ("/supply-depots", {**DEPOT, "stock": {"tents": -5}}, "stock"),
    ("/supply-depots", {**DEPOT, "stock": {"unicorns": 5}}, "stock.unicorns"),
    ("/supply-depots", {**DEPOT, "level": "province"}, "level"),
    ("/supply-depots", {**DEPOT, "geometry": {"type": "Point", "coordinates": [200, 32]}}, "geometry"),
    # Found by the schema fuzzer: shapely reads these, PostGIS did not (a 500 before).
    ("/supply-depots", {**DEPOT, "geometry": {"type": "Point", "coordinates": [[True, 0.0]]}}, "geometry"),
    ("/supply-depots", {**DEPOT, "geometry": {"type": "Point", "coordinates": [[118.8, 32.05]]}}, "geometry"),
    ("/rescue-teams", {**TEAM, "geometry": {"type": "Point", "coordinates": [118.8, True]}}, "geometry"),
]


@pytest.mark.parametrize(("path", "body", "field"), BAD)
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(
    city_client, city_db_url, city_keys, path, body, field
):
    before = _counts(city_db_url)
    problem = assert_problem(city_client.post(path, json=body, headers=bearer(city_keys["operator"])), 422)
    fields = [e.get("field", "") for e in problem.get("errors", [])]
    assert any(f == field or f.startswith(field + ".") or f.startswith(field + "[") for f in fields), problem
    assert _counts(city_db_url) == before


def test_a_patch_cannot_leave_more_needing_help_than_are_there(city_client, city_keys):
    op = bearer(city_keys["operator"])
    site = city_client.post("/vulnerable-sites", json={**SITE, "persons_assisted": 50}, headers=op).json()
    url, match = f"/vulnerable-sites/{site['id']}", {**op, "If-Match": '"1"'}
    problem = assert_problem(city_client.patch(url, json={"persons": 40}, headers=match), 422)
    assert problem["detail"] == "50 people needing help is more than the 40 people there."
    assert [e["field"] for e in problem["errors"]] == ["persons_assisted"]
    after = city_client.get(url)
    assert after.headers["etag"] == '"1"' and after.json()["properties"]["persons"] == 900
    assert city_client.patch(url, json={"persons": 60}, headers=match).status_code == 200


def test_filters_and_the_catalogue(city_client, city_keys):
    op = bearer(city_keys["operator"])
    for body in (TEAM, {**TEAM, "code": "RT-2", "capabilities": ["medical"], "team_type": "social"}):
        assert city_client.post("/rescue-teams", json=body, headers=op).status_code == 201
    pumping = city_client.get("/rescue-teams", params={"capability": "pumping"}).json()
    assert [f["properties"]["code"] for f in pumping["features"]] == ["RT-1"]
    assert city_client.get("/rescue-teams", params={"status": "available"}).json()["numberMatched"] == 2
    assert city_client.post("/supply-depots", json=DEPOT, headers=op).status_code == 201
    assert city_client.get("/supply-depots", params={"item": "sandbags"}).json()["numberMatched"] == 1
    assert city_client.get("/supply-depots", params={"item": "quilts"}).json()["numberMatched"] == 0
    items = {i["item"]: i for i in city_client.get("/supply-items").json()}
    assert len(items) == 21 and items["tents"] == {"item": "tents", "name": "帐篷", "unit": "顶"}
    depot = city_client.get("/supply-depots", params={"q": "玄武"}).json()["features"][0]["properties"]
    assert depot["stock"]["tents"] == {
        "name": "帐篷",
        "unit": "顶",
        "quantity": 300,
        "reserved": 0,
        "free": 300,
    }


def test_csv_imports_split_lists_and_read_stock(city_client, city_db_url, city_keys):
    op = bearer(city_keys["operator"])
    teams = (
        "code,name,team_type,sector,capabilities,members,equipment,lon,lat\n"
        "RT-9,鼓楼水上救援队,social,水上搜救,water_rescue；pumping,25,冲锋舟、救生衣,118.80,32.05\n"
    ).replace("；", ";")
    r = city_client.post(
        "/rescue-teams/import", files={"file": ("t.csv", io.BytesIO(teams.encode()))}, headers=op
    )
    assert r.status_code == 200 and r.json()["inserted"] == 1, r.text
    team = city_client.get("/rescue-teams", params={"q": "RT-9"}).json()["features"][0]["properties"]
    assert team["capabilities"] == ["water_rescue", "pumping"] and team["equipment"] == ["冲锋舟", "救生衣"]
    depots = "code,name,level,stock,lon,lat\nSD-9,街道储备点,street,tents:20; quilts：100,118.79,32.07\n"
    r = city_client.post(
        "/supply-depots/import", files={"file": ("d.csv", io.BytesIO(depots.encode()))}, headers=op
    )
    assert r.status_code == 200, r.text
    depot = city_client.get("/supply-depots", params={"q": "SD-9"}).json()["features"][0]["properties"]
    assert {k: v["quantity"] for k, v in depot["stock"].items()} == {"tents": 20, "quilts": 100}
    before = _counts(city_db_url)
    bad = "code,name,level,stock,lon,lat\nSD-10,x,street,tents:20; unicorns:3,118.79,32.07\n"
    r = city_client.post(
        "/supply-depots/import", files={"file": ("d.csv", io.BytesIO(bad.encode()))}, headers=op
    )
    problem = assert_problem(r, 422)
    assert problem["report"]["errors"][0]["field"] == "stock.unicorns"
    assert _counts(city_db_url) == before
