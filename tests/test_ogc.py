"""OGC API – Features under /ogc: read in full by GDAL's OAPIF driver and OWSLib, filters, paging, HTML."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import httpx
import numpy as np
import psycopg
import pyogrio
import pytest
import shapely
from conftest import _clone, assert_problem, bearer, make_client
from live import server_process
from openapi_spec_validator import validate as validate_openapi
from owslib.ogcapi.features import Features
from shapely.geometry import shape

from gridrisk.demo.hazards import build_demo_hazards
from gridrisk.demo.response_resources import build_demo_response_resources
from gridrisk.demo.shelters import build_demo_shelters
from gridrisk.demo.sources import build_demo_sources

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
COLLECTIONS = [
    "comprehensive",
    "emergency",
    "safety",
    "districts",
    "risk_sources",
    "shelters",
    "hazard_points",
    "vulnerable_sites",
    "rescue_teams",
    "supply_depots",
]
GRIDS = ["comprehensive", "emergency", "safety"]
INTEGER_IDS = {
    "risk_sources",
    "shelters",
    "hazard_points",
    "vulnerable_sites",
    "rescue_teams",
    "supply_depots",
}
# A name that must come back intact in JSON and escaped in HTML.
ODD_NAME = '<b>"玄武" & Co</b>'
T0 = datetime(2026, 3, 1, tzinfo=UTC)

# Independent of the code under test: plain reads of what each collection should hold.
DB_SQL = {
    "grid": "SELECT c.code AS id, c.name, c.district_code, c.population, r.colour, r.computed_colour,"
    " r.n_red, r.n_orange, r.n_yellow, r.n_blue, r.score, r.changed_at AS t, ST_AsBinary(c.geom) AS wkb"
    " FROM cells c JOIN cell_risk r ON r.cell_id = c.id WHERE c.layer = %(layer)s",
    "risk_sources": "SELECT id, code, name, category, level, status, method, score, updated_at AS t,"
    " ST_AsBinary(geom) AS wkb FROM risk_sources",
    "shelters": "SELECT id, code, name, class, status, capacity, occupancy, district_code, updated_at AS t,"
    " ST_AsBinary(geom) AS wkb FROM shelters",
    "hazard_points": "SELECT id, code, name, kind, level, status, threatened_persons, district_code,"
    " updated_at AS t, ST_AsBinary(geom) AS wkb FROM hazard_points",
    "vulnerable_sites": "SELECT id, code, name, kind, persons, status, district_code, updated_at AS t,"
    " ST_AsBinary(geom) AS wkb FROM vulnerable_sites",
    "rescue_teams": "SELECT id, code, name, team_type, members, status, district_code, updated_at AS t,"
    " ST_AsBinary(geom) AS wkb FROM rescue_teams",
    "supply_depots": "SELECT id, code, name, level, status, district_code, updated_at AS t,"
    " ST_AsBinary(geom) AS wkb FROM supply_depots",
}
# Properties compared value by value after a full read (beyond ids, geometry and time).
COMPARED = {
    "grid": ["name", "district_code", "population", "colour", "computed_colour", "n_red", "n_blue", "score"],
    "risk_sources": ["code", "name", "category", "level", "status", "method", "score"],
    "shelters": ["code", "name", "class", "status", "capacity", "occupancy", "district_code"],
    "hazard_points": ["code", "name", "kind", "level", "status", "threatened_persons", "district_code"],
    "vulnerable_sites": ["code", "name", "kind", "persons", "status", "district_code"],
    "rescue_teams": ["code", "name", "team_type", "members", "status", "district_code"],
    "supply_depots": ["code", "name", "level", "status", "district_code"],
}
TEMPORAL = {
    "grid": "changed_at",
    "risk_sources": "updated_at",
    "shelters": "updated_at",
    "hazard_points": "updated_at",
    "vulnerable_sites": "updated_at",
    "rescue_teams": "updated_at",
    "supply_depots": "updated_at",
}


def _kind(cid: str) -> str:
    return "grid" if cid in (*GRIDS, "districts") else cid


def db_rows(url: str, cid: str) -> dict:
    """{feature id: row} of a collection, read straight from the tables."""
    layer = "district" if cid == "districts" else cid
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(DB_SQL[_kind(cid)], {"layer": layer}).fetchall()
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def city(template_city):
    """The small demo city with a few hundred risk sources, shelters and hazard points, spread in time.

    Read-only for the tests of this module (they share it, and one live server on it).
    """
    gen = _clone(template_city)
    url = next(gen)
    with psycopg.connect(url) as conn:
        build_demo_sources(conn, seed=5, count=420)
        build_demo_shelters(conn, seed=5)
        build_demo_hazards(conn, seed=5)
        build_demo_response_resources(conn, seed=5)
        conn.execute("UPDATE shelters SET name = %s WHERE id = (SELECT min(id) FROM shelters)", (ODD_NAME,))
        # Times spread over weeks, with microseconds, so datetime filters have something to cut.
        conn.execute(
            "UPDATE risk_sources SET updated_at = %(t0)s + id * interval '37 minutes 13.250001 seconds'",
            {"t0": T0},
        )
        for table in ("shelters", "hazard_points", "vulnerable_sites", "rescue_teams", "supply_depots"):
            conn.execute(
                f"UPDATE {table} SET updated_at = %(t0)s + id * interval '5 hours 0.5 seconds'", {"t0": T0}
            )
        conn.execute(
            "UPDATE cell_risk SET changed_at = %(t0)s + (cell_id %% 211) * interval '3 hours'"
            " + (cell_id %% 7) * interval '0.123457 seconds'",
            {"t0": T0},
        )
    yield url
    gen.close()


@pytest.fixture(scope="module")
def server(city):
    """`gridrisk serve` in its own process: GDAL holds the GIL while it fetches, so a server in a
    thread of this process (tests/live.py's live_server) could never answer it."""
    with server_process(city) as base:
        yield base


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server, timeout=30) as client:
        yield client


def test_city_is_big_enough_to_page(city):
    """Every collection has rows, and the big ones need several pages at the sizes used below."""
    counts = {cid: len(db_rows(city, cid)) for cid in COLLECTIONS}
    assert all(n > 0 for n in counts.values()), counts
    assert counts["risk_sources"] == 420 and counts["safety"] > 500 and counts["comprehensive"] > 300
    assert counts["shelters"] > 30 and counts["hazard_points"] > 30, counts


# ---------------------------------------------------------------------------------------------
# Landing page, conformance, OpenAPI 3.0, collections


def test_landing_page_and_conformance(http, server):
    r = http.get("/ogc")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    links = {link["rel"]: link for link in r.json()["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= links.keys()
    assert links["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert links["data"]["href"] == f"{server}/ogc/collections"
    assert links["alternate"]["type"] == "text/html"
    conf = http.get(links["conformance"]["href"]).json()["conformsTo"]
    for cls in ("core", "oas30", "html", "geojson"):
        assert f"http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/{cls}" in conf


def test_openapi_30_document_is_valid_and_states_every_collection(http, server):
    r = http.get("/ogc/api")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.oai.openapi+json;version=3.0"
    doc = r.json()
    validate_openapi(doc)  # a valid OpenAPI 3.0 document (raises otherwise)
    assert doc["openapi"].startswith("3.0.") and doc["servers"] == [{"url": f"{server}/ogc"}]
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert (limit["default"], limit["maximum"]) == (10, 10_000)
    for cid in COLLECTIONS:
        params = doc["paths"][f"/collections/{cid}/items"]["get"]["parameters"]
        refs = {p["$ref"].rsplit("/", 1)[1] for p in params if "$ref" in p}
        assert {"bbox", "limit", "offset", "datetime", "f"} <= refs
        assert all(p["in"] == "query" for p in params if "name" in p)
    shelters = {
        p["name"] for p in doc["paths"]["/collections/shelters/items"]["get"]["parameters"] if "name" in p
    }
    assert {"class", "status", "district_code"} <= shelters
    risk = doc["paths"]["/collections/risk_sources/items"]["get"]["parameters"]
    level = next(p for p in risk if p.get("name") == "level")
    assert level["schema"]["enum"] == ["red", "orange", "yellow", "blue"]
    html = http.get("/ogc/api?f=html")
    assert html.status_code == 200 and "swagger" in html.text.lower() and "/ogc/api?f=json" in html.text


def test_collections_carry_the_extent_of_their_data(http, city):
    body = http.get("/ogc/collections").json()
    assert [c["id"] for c in body["collections"]] == COLLECTIONS
    with psycopg.connect(city) as conn:
        for c in body["collections"]:
            rows = db_rows(city, c["id"])
            geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows.values()])
            bounds = shapely.total_bounds(geoms)
            assert c["extent"]["spatial"]["crs"] == CRS84 and c["itemType"] == "feature"
            assert c["extent"]["spatial"]["bbox"][0] == pytest.approx(list(bounds), abs=1e-9), c["id"]
            times = [r["t"] for r in rows.values()]
            start, end = c["extent"]["temporal"]["interval"][0]
            assert datetime.fromisoformat(start) == min(times) and datetime.fromisoformat(end) == max(times)
            rels = {(link["rel"], link["type"]) for link in c["links"]}
            assert {("items", "application/geo+json"), ("items", "text/html")} <= rels
            assert ("describedby", "application/schema+json") in rels
            one = http.get(f"/ogc/collections/{c['id']}").json()
            assert one["extent"] == c["extent"] and one["id"] == c["id"]
        assert conn.execute("SELECT 1").fetchone()


def test_queryables_and_schema(http):
    q = http.get("/ogc/collections/safety/queryables")
    assert q.status_code == 200 and q.headers["content-type"] == "application/schema+json"
    props = q.json()["properties"]
    assert {"code", "district_code", "colour", "computed_colour"} <= props.keys()
    assert props["colour"]["enum"] == ["red", "orange", "yellow", "blue"]
    assert "population" not in props
    s = http.get("/ogc/collections/hazard_points/schema").json()
    fields = s["properties"]["properties"]["properties"]
    assert fields["threatened_persons"]["type"] == "integer" and fields["property_value"]["type"] == "number"
    assert fields["updated_at"] == {**fields["updated_at"], "type": "string", "format": "date-time"}
    assert s["properties"]["id"]["type"] == "integer"


# ---------------------------------------------------------------------------------------------
# Clients: GDAL's OAPIF driver and OWSLib read every collection in full


def _assert_same_as_db(cid: str, got: dict[object, dict], got_geoms: dict, rows: dict) -> None:
    """Ids, the compared properties, the temporal property and the geometries equal the database's."""
    assert set(got) == set(rows), cid
    kind = _kind(cid)
    for fid, props in got.items():
        row = rows[fid]
        for name in COMPARED[kind]:
            if name == "district_code" and cid == "districts":
                continue
            value = props[name]
            expected = row[name]
            if expected is None:  # GDAL reads a null number as NaN
                assert value is None or (isinstance(value, float) and np.isnan(value)), (cid, fid, name)
            elif isinstance(expected, float) or isinstance(value, float):
                assert value == pytest.approx(expected, rel=1e-12, abs=1e-9), (cid, fid, name)
            else:
                assert value == expected, (cid, fid, name, value, expected)
        served = props[TEMPORAL[kind]]
        served = served if isinstance(served, datetime) else datetime.fromisoformat(served)
        # GDAL keeps milliseconds; the JSON carries microseconds.
        assert abs(served - row["t"]) < timedelta(milliseconds=1), (cid, fid)
    ids = list(rows)
    expected_geoms = shapely.from_wkb([bytes(rows[i]["wkb"]) for i in ids])
    served_geoms = np.array([got_geoms[i] for i in ids])
    # Served with 7 decimals (≈1 cm): equal vertex by vertex within 1e-6°.
    assert shapely.equals_exact(served_geoms, expected_geoms, tolerance=1e-6).all(), cid


def test_gdal_reads_every_collection_in_full(server, city):
    url = f"OAPIF:{server}/ogc"
    layers = pyogrio.list_layers(url)
    assert [name for name, _ in layers] == COLLECTIONS
    assert dict(layers)["safety"] == "MultiPolygon"
    page = 37  # several pages per collection: GDAL follows the `next` links
    for cid in COLLECTIONS:
        rows = db_rows(city, cid)
        info = pyogrio.read_info(url, layer=cid)
        assert info["features"] == len(rows), cid  # numberMatched
        df = pyogrio.read_dataframe(url, layer=cid, fid_as_index=cid in INTEGER_IDS, PAGE_SIZE=str(page))
        assert len(df) == len(rows), cid  # nothing repeated or missed across the pages
        if cid not in INTEGER_IDS:
            df = df.set_index("id")
        got = {
            fid: rec
            for fid, rec in zip(df.index, df.drop(columns="geometry").to_dict("records"), strict=True)
        }
        geoms = dict(zip(df.index, df.geometry.values, strict=True))
        assert len(got) == len(df)
        _assert_same_as_db(cid, got, geoms, rows)
    # Field types come from the describedby schema, not from guessing on the first page.
    info = pyogrio.read_info(url, layer="risk_sources")
    fields = dict(zip(info["fields"], info["dtypes"], strict=True))
    assert fields["score"] == "float64" and fields["version"] == "int32"
    assert fields["updated_at"].startswith("datetime64")


def test_gdal_forwards_bbox_and_attribute_filters(server, city):
    url = f"OAPIF:{server}/ogc"
    rows = db_rows(city, "safety")
    box = (118.78, 32.03, 118.82, 32.06)
    geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows.values()])
    hits = shapely.intersects(geoms, shapely.box(*box))
    expected = {
        fid for fid, hit, r in zip(rows, hits, rows.values(), strict=True) if hit and r["colour"] != "blue"
    }
    colours = {"red", "orange", "yellow"}
    got = set()
    for colour in colours:
        df = pyogrio.read_dataframe(
            url, layer="safety", bbox=box, where=f"colour = '{colour}'", PAGE_SIZE="25"
        )
        assert set(df["colour"]) <= {colour}
        got |= set(df["id"])
    assert got == expected and expected
    red = {
        i for i, r in db_rows(city, "risk_sources").items() if r["level"] == "red" and r["status"] == "active"
    }
    df = pyogrio.read_dataframe(
        url, layer="risk_sources", where="level = 'red' AND status = 'active'", fid_as_index=True
    )
    assert set(df.index) == red and red


def test_owslib_pages_through_every_collection(server, city):
    api = Features(f"{server}/ogc")
    assert api.feature_collections() == COLLECTIONS
    collections = {c["id"]: c for c in api.collections()["collections"]}
    assert collections.keys() == set(COLLECTIONS)
    limit = 53
    for cid in COLLECTIONS:
        rows = db_rows(city, cid)
        got, geoms, offset, pages = {}, {}, 0, 0
        while True:
            page = api.collection_items(cid, limit=limit, offset=offset)
            pages += 1
            assert page["numberMatched"] == len(rows) and page["numberReturned"] == len(page["features"])
            for f in page["features"]:
                assert f["id"] not in got, (cid, f["id"])  # stable order: no repeats across pages
                got[f["id"]] = f["properties"]
                geoms[f["id"]] = shape(f["geometry"])
            rels = {link["rel"] for link in page["links"]}
            assert ("prev" in rels) == (offset > 0)
            if "next" not in rels:
                break
            assert page["numberReturned"] == limit
            offset += limit
        assert pages == -(-len(rows) // limit), cid
        _assert_same_as_db(cid, got, geoms, rows)
    one = api.collection_item("shelters", str(min(db_rows(city, "shelters"))))
    assert one["properties"]["name"] == ODD_NAME
    queryables = api.collection_queryables("risk_sources")["properties"]
    assert {"level", "status", "category", "code"} <= queryables.keys()


# ---------------------------------------------------------------------------------------------
# Items: paging, bbox, datetime and property filters against independent computations


def _all(http, path: str, **params) -> tuple[list, dict]:
    """Every feature of an items query, following `next` links; and the first page."""
    r = http.get(path, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/geo+json"
    first = body = r.json()
    features = list(body["features"])
    while nxt := next((link["href"] for link in body["links"] if link["rel"] == "next"), None):
        body = http.get(nxt).json()
        features += body["features"]
    return features, first


def test_items_page_by_id_with_next_and_prev(http, city):
    rows = db_rows(city, "risk_sources")
    r = http.get("/ogc/collections/risk_sources/items")
    body = r.json()
    assert body["numberReturned"] == 10 and body["numberMatched"] == len(rows)  # default limit 10
    assert [f["id"] for f in body["features"]] == sorted(rows)[:10]
    assert datetime.fromisoformat(body["timeStamp"]).tzinfo is not None
    rels = [link["rel"] for link in body["links"]]
    assert rels.count("next") == 1 and "prev" not in rels and "collection" in rels
    features, _ = _all(http, "/ogc/collections/risk_sources/items", limit=100)
    assert [f["id"] for f in features] == sorted(rows)
    last = http.get("/ogc/collections/risk_sources/items", params={"limit": 100, "offset": 400}).json()
    assert last["numberReturned"] == 20 and last["numberMatched"] == 420
    links = {link["rel"]: link["href"] for link in last["links"]}
    assert "next" not in links and "offset=300" in links["prev"] and "limit=100" in links["prev"]
    beyond = http.get("/ogc/collections/risk_sources/items", params={"limit": 5, "offset": 1000}).json()
    assert beyond["numberReturned"] == 0 and beyond["numberMatched"] == 420 and beyond["features"] == []
    # Grid cells page by code.
    cells = db_rows(city, "emergency")
    features, first = _all(http, "/ogc/collections/emergency/items", limit=7)
    assert [f["id"] for f in features] == sorted(cells) and first["numberMatched"] == len(cells)


def test_bbox_matches_shapely(http, city):
    for cid, box in (
        ("safety", (118.79, 32.02, 118.83, 32.05)),
        ("risk_sources", (118.80, 32.00, 118.86, 32.06)),
    ):
        rows = db_rows(city, cid)
        geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows.values()])
        expected = {
            fid for fid, hit in zip(rows, shapely.intersects(geoms, shapely.box(*box)), strict=True) if hit
        }
        assert 10 < len(expected) < len(rows)
        features, first = _all(http, f"/ogc/collections/{cid}/items", bbox=",".join(map(str, box)), limit=10)
        assert {f["id"] for f in features} == expected and first["numberMatched"] == len(expected)
        assert len(features) == len(expected)
    # Six numbers (heights ignored), and a box across the antimeridian (170°E → 119°E, the long way).
    all_cells = len(db_rows(city, "districts"))
    six = http.get("/ogc/collections/districts/items", params={"bbox": "100,20,-10,130,40,10"}).json()
    crossing = http.get("/ogc/collections/districts/items", params={"bbox": "170,20,130,40"}).json()
    west = http.get("/ogc/collections/districts/items", params={"bbox": "175,20,-170,40"}).json()
    assert six["numberMatched"] == crossing["numberMatched"] == all_cells and west["numberMatched"] == 0


def test_datetime_filters_match_python(http, city):
    rows = db_rows(city, "risk_sources")
    times = {fid: r["t"] for fid, r in rows.items()}
    some = sorted(times.values())
    exact = some[17]
    cases = {
        exact.isoformat(): lambda t: t == exact,  # an instant with microseconds: that instant
        exact.strftime("%Y-%m-%dT%H:%M:%SZ"): lambda t: (
            exact.replace(microsecond=0) <= t < exact.replace(microsecond=0) + timedelta(seconds=1)
        ),
        "2026-03-02": lambda t: datetime(2026, 3, 2, tzinfo=UTC) <= t < datetime(2026, 3, 3, tzinfo=UTC),
        "2026-03-02T08:00:00Z/2026-03-04T20:30:00.5Z": lambda t: (
            datetime(2026, 3, 2, 8, tzinfo=UTC) <= t <= datetime(2026, 3, 4, 20, 30, 0, 500000, tzinfo=UTC)
        ),
        "../2026-03-03T00:00:00Z": lambda t: t < datetime(2026, 3, 3, 0, 0, 1, tzinfo=UTC),
        "2026-03-06T12:00:00+08:00/..": lambda t: t >= datetime(2026, 3, 6, 4, tzinfo=UTC),
        "/2026-03-01T12:00:00Z": lambda t: t < datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC),
        "../..": lambda t: True,
    }
    for value, keep in cases.items():
        expected = {fid for fid, t in times.items() if keep(t)}
        body = http.get(
            "/ogc/collections/risk_sources/items", params={"datetime": value, "limit": 10_000}
        ).json()
        assert {f["id"] for f in body["features"]} == expected, value
        assert body["numberMatched"] == len(expected)
    assert 0 < len({fid for fid, t in times.items() if cases["2026-03-02"](t)}) < len(times)
    # Grid cells filter on changed_at.
    cells = db_rows(city, "safety")
    start, end = datetime(2026, 3, 5, tzinfo=UTC), datetime(2026, 3, 9, 12, tzinfo=UTC)
    # The end has no fractional seconds: it covers its whole second.
    expected = {fid for fid, r in cells.items() if start <= r["t"] < end + timedelta(seconds=1)}
    value = f"{start.isoformat()}/{end.isoformat()}"
    features, first = _all(http, "/ogc/collections/safety/items", datetime=value, limit=1000)
    assert {f["id"] for f in features} == expected and 0 < len(expected) < len(cells)


def test_property_filters_match_python(http, city):
    sources = db_rows(city, "risk_sources")
    for params in (
        {"level": "red"},
        {"level": "orange", "status": "active"},
        {"method": "LS", "level": "blue"},
    ):
        expected = {i for i, r in sources.items() if all(r[k] == v for k, v in params.items())}
        features, first = _all(http, "/ogc/collections/risk_sources/items", limit=1000, **params)
        assert {f["id"] for f in features} == expected and first["numberMatched"] == len(expected), params
        assert expected
        assert all(f["properties"][k] == v for f in features for k, v in params.items())
    one = next(iter(sources.values()))
    body = http.get("/ogc/collections/risk_sources/items", params={"code": one["code"]}).json()
    assert [f["id"] for f in body["features"]] == [one["id"]]
    cells = db_rows(city, "safety")
    expected = {c for c, r in cells.items() if r["district_code"] == "320104" and r["colour"] == "yellow"}
    features, _ = _all(
        http, "/ogc/collections/safety/items", district_code="320104", colour="yellow", limit=500
    )
    assert {f["id"] for f in features} == expected and expected
    shelters = db_rows(city, "shelters")
    features, _ = _all(http, "/ogc/collections/shelters/items", **{"class": "emergency"}, limit=1000)
    assert {f["id"] for f in features} == {i for i, r in shelters.items() if r["class"] == "emergency"}
    # bbox, datetime and a property together.
    box = (118.78, 32.02, 118.84, 32.07)
    geoms = shapely.from_wkb([bytes(r["wkb"]) for r in sources.values()])
    inside = dict(zip(sources, shapely.intersects(geoms, shapely.box(*box)), strict=True))
    after = datetime(2026, 3, 4, tzinfo=UTC)
    expected = {i for i, r in sources.items() if inside[i] and r["t"] >= after and r["status"] == "active"}
    features, _ = _all(
        http,
        "/ogc/collections/risk_sources/items",
        bbox=",".join(map(str, box)),
        datetime="2026-03-04T00:00:00Z/..",
        status="active",
        limit=50,
    )
    assert {f["id"] for f in features} == expected and expected


def test_one_item(http, city):
    cell = db_rows(city, "safety")
    code = sorted(cell)[3]
    r = http.get(f"/ogc/collections/safety/items/{code}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    f = r.json()
    assert f["id"] == code and f["properties"]["colour"] == cell[code]["colour"]
    assert shapely.equals_exact(shape(f["geometry"]), shapely.from_wkb(bytes(cell[code]["wkb"])), 1e-6)
    assert {link["rel"] for link in f["links"]} >= {"self", "alternate", "collection"}
    shelter_id = min(db_rows(city, "shelters"))
    s = http.get(f"/ogc/collections/shelters/items/{shelter_id}").json()
    assert s["id"] == shelter_id and s["properties"]["name"] == ODD_NAME


# ---------------------------------------------------------------------------------------------
# Errors: 404 and 400 as problem+json


def test_unknown_collection_and_feature_are_404(http):
    for path in (
        "/ogc/collections/nope",
        "/ogc/collections/nope/items",
        "/ogc/collections/nope/items/1",
        "/ogc/collections/nope/queryables",
        "/ogc/collections/safety/items/NO-SUCH-CELL",
        "/ogc/collections/shelters/items/999999999",
        "/ogc/collections/shelters/items/abc",
        "/ogc/collections/shelters/items/99999999999999999999999",
    ):
        assert_problem(http.get(path), 404)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"bbox": "1,2,3"}, "bbox"),
        ({"bbox": "a,b,c,d"}, "bbox"),
        ({"bbox": "118,32,119,nan"}, "bbox"),
        ({"bbox": "118,33,119,32"}, "bbox"),
        ({"bbox": "118,32,190,33"}, "bbox"),
        ({"limit": "0"}, "limit"),
        ({"limit": "10001"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"datetime": "yesterday"}, "datetime"),
        ({"datetime": "2026-02-30T00:00:00Z"}, "datetime"),
        ({"datetime": "2026-03-05/2026-03-01"}, "datetime"),
        ({"datetime": "2026-03-01/2026-03-02/2026-03-03"}, "datetime"),
        ({"colur": "red"}, "colur"),
        ({"colour": "purple"}, "colour"),
        ({"population": "5"}, "population"),
        ({"f": "xml"}, "f"),
        ({"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/32650"}, "bbox-crs"),  # UTM: not served
        ({"crs": "EPSG:2263"}, "crs"),
        ({"crs": "not a crs"}, "crs"),
        ({"bbox-crs": "GCJ-02"}, "bbox-crs"),  # an output option only
        ({"bbox-crs": "EPSG:3857", "bbox": "13230000,3760000,13220000,3770000"}, "bbox"),  # min > max
    ],
)
def test_bad_items_parameters_are_400(http, params, field):
    body = assert_problem(http.get("/ogc/collections/safety/items", params=params), 400)
    assert field in body["detail"] and body["errors"][0]["field"] == field


@pytest.mark.parametrize(
    "raw, ogc, api",
    [
        ("118,32,119,33", (118, 32, 119, 33), (118, 32, 119, 33)),
        ("170,20,130,40", (170, 20, 130, 40), "min greater than max"),  # OGC: across 180°
        ("100,20,-10,130,40,10", (100, 20, 130, 40), "four comma-separated numbers"),  # heights
        ("118,33,119,32", "minLat greater than maxLat", "min greater than max"),
        ("118,32,190,33", "coordinates out of range", "coordinates out of range"),
        ("118,32,119,inf", "four comma-separated numbers", "four comma-separated numbers"),
    ],
)
def test_one_bbox_parser_for_ogc_and_the_api(raw, ogc, api):
    """OGC items and the API's routes read bbox with the same parser, each with its own rules."""
    from gridrisk.api.params import read_bbox
    from gridrisk.errors import BadRequest, InvalidInput

    ogc_rules = {"error": BadRequest, "echo": True, "heights": True, "antimeridian": True}
    for rules, expected, error in ((ogc_rules, ogc, BadRequest), ({}, api, InvalidInput)):
        if isinstance(expected, tuple):
            assert read_bbox(raw, **rules) == expected
            continue
        with pytest.raises(error) as caught:
            read_bbox(raw, **rules)
        assert caught.value.errors == [{"field": "bbox", "message": expected}]
        assert (f"bbox={raw!r}" in caught.value.detail) is (error is BadRequest)


def test_more_bad_parameters_are_400(http):
    twice = http.get("/ogc/collections/safety/items?colour=red&colour=blue")
    assert "more than once" in assert_problem(twice, 400)["detail"]
    assert_problem(http.get("/ogc/collections/shelters/items", params={"capacity": "x"}), 400)
    assert_problem(http.get("/ogc/collections/hazard_points/items", params={"kind": "volcano"}), 400)
    assert_problem(http.get("/ogc/collections", params={"limit": "5"}), 400)
    assert_problem(http.get("/ogc", params={"f": "pdf"}), 400)
    assert_problem(http.get("/ogc/collections/safety/items/SAF-1", params={"bbox": "1,2,3,4"}), 400)
    ok = http.get("/ogc/collections/safety/items", params={"bbox-crs": CRS84, "crs": CRS84, "limit": 1})
    assert ok.status_code == 200 and ok.json()["numberReturned"] == 1


# ---------------------------------------------------------------------------------------------
# HTML for a person


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_html_views(http, city):
    for path in ("/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/safety"):
        r = http.get(path, headers=BROWSER)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
        assert r.text.startswith("<!doctype html>") and 'rel="alternate" type="application/json"' in r.text
    assert (
        http.get("/ogc/collections", headers={"Accept": "*/*"}).headers["content-type"] == "application/json"
    )
    page = http.get("/ogc/collections", params={"f": "html"}).text
    assert all(f"/ogc/collections/{cid}/items?f=html" in page for cid in COLLECTIONS)
    # Chinese first for the people who read it, English beside it.
    assert '<html lang="zh-CN">' in page and "<h1>要素集合 Collections</h1>" in page
    assert "应急避难场所 Shelters" in page and "风险源 Risk sources" in page
    # The same titles in JSON, which is what QGIS shows as the layer's name.
    titles = {c["id"]: c["title"] for c in http.get("/ogc/collections").json()["collections"]}
    assert (
        titles["shelters"] == "应急避难场所 Shelters" and titles["safety"] == "安监格 Safety-supervision grid"
    )
    cells = sorted(db_rows(city, "safety"))
    items = http.get("/ogc/collections/safety/items", params={"f": "html", "limit": 5, "offset": 5})
    assert items.headers["content-type"].startswith("text/html")
    shown = re.findall(r"/ogc/collections/safety/items/([^?\"]+)\?f=html", items.text)
    assert shown == cells[5:10]
    assert "Next page" in items.text and "Previous page" in items.text and "下一页" in items.text
    assert f"{len(cells):,} matching" in items.text
    shelter_id = min(db_rows(city, "shelters"))
    one = http.get(f"/ogc/collections/shelters/items/{shelter_id}", headers=BROWSER)
    assert one.status_code == 200 and ODD_NAME not in one.text and "<b>" not in one.text
    assert ODD_NAME in unescape(one.text)  # shown intact, as text (&lt;b&gt;&#34;玄武&#34; &amp; Co…)
    listing = http.get("/ogc/collections/shelters/items", params={"f": "html", "limit": 1}).text
    assert "&lt;b&gt;" in listing and "<b>" not in listing
    q = http.get("/ogc/collections/risk_sources/queryables", headers=BROWSER)
    assert q.headers["content-type"].startswith("text/html") and "<code>level</code>" in q.text
    missing = http.get("/ogc/collections/nope", headers=BROWSER)
    assert_problem(missing, 404)


# ---------------------------------------------------------------------------------------------
# A city without data, and reads that need a key


def test_empty_collections_have_no_extent_and_no_items(client):
    """The base template holds the districts only: grid and registry collections are empty."""
    body = client.get("/ogc/collections").json()
    by_id = {c["id"]: c for c in body["collections"]}
    assert "extent" in by_id["districts"] and len(by_id["districts"]["extent"]["spatial"]["bbox"][0]) == 4
    for cid in ("safety", "risk_sources", "shelters", "hazard_points"):
        assert "extent" not in by_id[cid], cid
        page = client.get(f"/ogc/collections/{cid}/items", params={"limit": 5, "offset": 10}).json()
        assert (page["numberMatched"], page["numberReturned"], page["features"]) == (0, 0, [])
        assert {link["rel"] for link in page["links"]} == {"self", "alternate", "prev", "collection"}
    districts = client.get("/ogc/collections/districts/items", params={"limit": 4}).json()
    assert districts["numberMatched"] == 11 and districts["numberReturned"] == 4
    for path in ("/ogc/collections", "/ogc/collections/safety"):  # HTML without an extent too
        page = client.get(path, params={"f": "html"})
        assert page.status_code == 200 and "（无数据）" in page.text, path
    assert "colour" in districts["features"][0]["properties"]


def test_reads_need_a_key_when_reads_are_not_public(db_url, keys):
    with make_client(db_url, public_read=False) as c:
        assert_problem(c.get("/ogc/collections/districts/items"), 401)
        ok = c.get("/ogc/collections/districts/items", headers=bearer(keys["viewer"]))
        assert ok.status_code == 200 and ok.json()["numberMatched"] == 11
