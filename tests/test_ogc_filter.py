"""OGC API – Features Part 3: CQL2 filters over HTTP (text and JSON) and through GDAL give the features an
independent computation picks; hostile filters are 400s naming what is wrong, never SQL."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pyogrio
import pytest
import shapely
from test_ogc import T0, city, db_rows, http, server  # noqa: F401  (the live server on the demo city)

from gridrisk.ogc.cql2_filter import CONFORMANCE

SQUARE = shapely.box(118.78, 32.02, 118.83, 32.06)


def _ids(http, cid: str, **params) -> set:  # noqa: F811
    r = http.get(f"/ogc/collections/{cid}/items", params={"limit": 10_000, **params})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["numberMatched"] == body["numberReturned"] == len(body["features"])
    return {f["id"] for f in body["features"]}


def _geom(row: dict):
    return shapely.from_wkb(bytes(row["wkb"]))


MIDDLE = T0.replace(day=15)
CASES = [
    ("safety", "colour = 'red' OR colour = 'orange'", lambda r: r["colour"] in ("red", "orange")),
    ("safety", "colour IN ('red', 'yellow') AND NOT (computed_colour = 'red')",
     lambda r: r["colour"] in ("red", "yellow") and r["computed_colour"] != "red"),
    ("safety", "name LIKE '玄武%' AND S_INTERSECTS(geometry, " + SQUARE.wkt + ")",
     lambda r: r["name"].startswith("玄武") and _geom(r).intersects(SQUARE)),
    ("safety", "S_WITHIN(geometry, BBOX(118.78, 32.02, 118.83, 32.06))", lambda r: _geom(r).within(SQUARE)),
    ("safety", f"changed_at >= TIMESTAMP('{MIDDLE.isoformat()}') AND colour <> 'blue'",
     lambda r: r["t"] >= MIDDLE and r["colour"] != "blue"),
    ("risk_sources", "level = 'red' AND status = 'active'",
     lambda r: r["level"] == "red" and r["status"] == "active"),
    ("risk_sources",
     "updated_at BETWEEN TIMESTAMP('2026-03-02T00:00:00Z') AND TIMESTAMP('2026-03-05T00:00:00Z')",
     lambda r: datetime(2026, 3, 2, tzinfo=UTC) <= r["t"] <= datetime(2026, 3, 5, tzinfo=UTC)),
    ("risk_sources", "CASEI(category) = CASEI('GAS') OR code LIKE '%-00_'",
     lambda r: r["category"] == "gas" or (r["code"][-4] == "-" and r["code"][-3:-1] == "00")),
    ("shelters", "district_code IS NULL OR class IN ('central', 'fixed')",
     lambda r: r["district_code"] is None or r["class"] in ("central", "fixed")),
]  # fmt: skip


@pytest.mark.parametrize(("cid", "text", "want"), CASES)
def test_filters_pick_what_an_independent_computation_picks(http, city, cid, text, want):  # noqa: F811
    rows = db_rows(city, cid)
    expected = {i for i, r in rows.items() if want(r)}
    assert _ids(http, cid, filter=text) == expected
    assert _ids(http, cid, filter=text, **{"filter-lang": "cql2-text"}) == expected


def test_cql2_json_and_filter_crs(http, city):  # noqa: F811
    rows = db_rows(city, "risk_sources")
    doc = '{"op": "and", "args": [{"op": "=", "args": [{"property": "level"}, "orange"]}, ' + (
        '{"op": "s_intersects", "args": [{"property": "geometry"}, '
        '{"bbox": [118.78, 32.02, 118.83, 32.06]}]}]}'
    )
    expected = {i for i, r in rows.items() if r["level"] == "orange" and _geom(r).intersects(SQUARE)}
    assert _ids(http, "risk_sources", filter=doc, **{"filter-lang": "cql2-json"}) == expected and expected
    # The same box in EPSG:4326's own axis order (latitude first).
    lat_first = "level = 'orange' AND S_INTERSECTS(geometry, BBOX(32.02, 118.78, 32.06, 118.83))"
    assert _ids(http, "risk_sources", filter=lat_first, **{"filter-crs": "EPSG:4326"}) == expected


def test_gdal_sends_attribute_filters_that_give_the_same_features(server, city):  # noqa: F811
    url = f"OAPIF:{server}/ogc"
    rows = db_rows(city, "safety")
    where = "colour IN ('red', 'orange') AND name LIKE '玄武%'"
    expected = {
        i for i, r in rows.items() if r["colour"] in ("red", "orange") and r["name"].startswith("玄武")
    }
    df = pyogrio.read_dataframe(url, layer="safety", where=where)
    assert set(df["id"]) == expected and expected


def test_conformance_declares_the_filter_classes(http):  # noqa: F811
    conforms = http.get("/ogc/conformance").json()["conformsTo"]
    assert set(CONFORMANCE) <= set(conforms)
    # QGIS sends a filter only with all of these.
    for cls in ("ogcapi-features-3/1.0/conf/filter", "ogcapi-features-3/1.0/conf/features-filter",
                "cql2/1.0/conf/basic-cql2", "cql2/1.0/conf/cql2-text"):  # fmt: skip
        assert f"http://www.opengis.net/spec/{cls}" in conforms
    q = http.get("/ogc/collections/safety/queryables").json()["properties"]
    assert q["geometry"]["x-ogc-role"] == "primary-geometry" and "changed_at" in q


HOSTILE = [
    ("population > 5", "population"),  # a property that is not queryable
    ("nope = 1", "nope"),
    ("pg_sleep(10) = 1", "pg_sleep"),
    ("colour = 'red'; DROP TABLE cells; --", "not valid"),
    ("colour = 5", "compares a string with a number"),
    (
        "".join(f"(colour = 'red' {('AND', 'OR')[i % 2]} " for i in range(30)) + "colour = 'red'" + ")" * 30,
        "deeper",
    ),
    ("NOT " * 25 + "colour = 'red'", "deeper"),
    ("colour = '" + "x" * 5000 + "'", "characters long"),
    ("colour IN (" + ", ".join(f"'{i}'" for i in range(600)) + ")", "1 to 500 values"),
    ("S_INTERSECTS(name, POINT(118 32))", "not a geometry"),
    ("colour LIKE 5", "LIKE"),
    ("", "not valid"),
]


@pytest.mark.parametrize(("text", "named"), HOSTILE)
def test_hostile_filters_are_400s_naming_the_problem(http, city, text, named):  # noqa: F811
    r = http.get("/ogc/collections/safety/items", params={"filter": text})
    assert r.status_code == 400, r.text
    body = r.json()
    assert named in body["detail"] and "SELECT" not in body["detail"]
    with psycopg.connect(city) as conn:  # nothing ran: the table is there, whole
        assert conn.execute("SELECT count(*) FROM cells WHERE layer = 'safety'").fetchone()[0] > 500


def test_a_quote_in_a_literal_is_only_a_literal(http, city):  # noqa: F811
    assert _ids(http, "safety", filter="name = 'x''; DROP TABLE cells; --'") == set()
    r = http.get("/ogc/collections/safety/items", params={"filter": "colour = 'red'", "filter-lang": "ecql"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "filter-lang"
    r = http.get("/ogc/collections/safety/items", params={"filter": "colour = 'red'", "filter-crs": "GCJ-02"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "filter-crs"
    with psycopg.connect(city) as conn:
        assert conn.execute("SELECT count(*) FROM cells").fetchone()[0] > 0
