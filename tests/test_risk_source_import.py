"""Bulk import of risk sources (CSV, GeoJSON) over HTTP: upsert by code, all-or-nothing, map current."""

from __future__ import annotations

import csv
import io

import orjson
import psycopg
import pytest
from conftest import assert_problem, bearer, make_client
from pyproj import Transformer

from gridrisk.registry.bulk import import_file
from gridrisk.registry.risk_sources import RISK_SOURCES

RANK = {"blue": 0, "yellow": 1, "orange": 2, "red": 3}
HEADER = ["code", "name", "category", "lon", "lat", "wkt", "address", "plate_code", "enterprise",
          "department", "method", "L", "E", "C", "S", "level", "reason", "status"]  # fmt: skip


@pytest.fixture
def client(city_db_url):
    """The real app (`create_app()`, as served) on the small demo city."""
    with make_client(city_db_url) as c:
        yield c


def import_risk_sources(conn, data, **kw):
    return import_file(conn, RISK_SOURCES, data, **kw)


def spec_level(method: str, score: float) -> str:
    """SPEC.md's default thresholds, written out independently of the database."""
    if method == "LEC":
        return "red" if score > 320 else "orange" if score > 160 else "yellow" if score > 70 else "blue"
    return "red" if score >= 20 else "orange" if score >= 15 else "yellow" if score >= 9 else "blue"


def inner_points(url: str, n: int) -> list[tuple[float, float]]:
    """N points, each well inside a different comprehensive cell of the test city."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) AS p FROM cells"
            " WHERE layer = 'comprehensive' ORDER BY code LIMIT %s) t",
            (n,),
        ).fetchall()
    assert len(rows) == n
    return [(round(x, 7), round(y, 7)) for x, y in rows]


def to_csv(rows: list[dict]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HEADER)
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue().encode()


def sample_rows(url: str) -> list[dict]:
    """Seven sources covering LEC, LS, direct, an override-free blue, and a polygon given as WKT."""
    pts = inner_points(url, 7)
    rows = [
        dict(code="T-001", name="储罐区", category="hazardous_chemicals", method="LEC", L=6, E=6, C=15),
        dict(code="T-002", name="中山路加油站", category="gas", method="LEC", L=3, E=6, C=7),
        dict(code="T-003", name="新街口商场", category="crowded_place", method="LEC", L=1, E=6, C=40),
        dict(code="T-004", name="锅炉房", category="special_equipment", method="LS", L=4, S=4),
        dict(code="T-005", name="有限空间作业点", category="confined_space", method="direct", level="orange",
             reason="区应急管理局认定"),
        dict(code="T-006", name="冷库", category="ammonia_refrigeration", method="LEC", L=0.5, E=1, C=1,
             plate_code="NJ-320102-00000006"),
    ]  # fmt: skip
    for r, (x, y) in zip(rows, pts, strict=False):
        r.update(lon=x, lat=y)
    x, y = pts[6]
    d = 0.0005
    ring = ",".join(f"{x + dx} {y + dy}" for dx, dy in ((-d, -d), (d, -d), (d, d), (-d, d), (-d, -d)))
    rows.append(
        dict(code="T-007", name="地铁站点工地", category="construction_site", method="LS", L=5, S=5,
             wkt=f"POLYGON(({ring}))")
    )  # fmt: skip
    return rows


def upload(client, key, content: bytes, filename="sources.csv", **form):
    return client.post(
        "/risk-sources/import",
        headers=bearer(key),
        files={"file": (filename, io.BytesIO(content), "application/octet-stream")},
        data=form,
    )


def sources(url: str) -> dict[str, dict]:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        rows = conn.execute(
            "SELECT id, code, method, l, e, c, s, score, level, version, created_by, updated_by,"
            " GeometryType(geom) AS gtype, ST_AsText(geom) AS wkt FROM risk_sources"
        ).fetchall()
    return {r["code"]: r for r in rows}


def assert_cells_coloured(url: str, codes: list[str]) -> None:
    """Independent of source_cells: every comprehensive cell under each source is at least its level."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT s.code, s.level, cr.colour FROM risk_sources s"
            " JOIN cells c ON c.layer = 'comprehensive' AND ST_Intersects(c.geom, s.geom)"
            "  AND (GeometryType(s.geom) = 'POINT' OR NOT ST_Touches(c.geom, s.geom))"
            " JOIN cell_risk cr ON cr.cell_id = c.id"
            " WHERE s.code = ANY(%s) AND s.status = 'active'",
            (codes,),
        ).fetchall()
    assert {r[0] for r in rows} == set(codes)
    for code, level, colour in rows:
        assert RANK[colour] >= RANK[level], (code, level, colour)


def state(url: str) -> tuple:
    """Everything an import could change, to prove a rejected one changed nothing."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (SELECT count(*) FROM risk_sources), (SELECT count(*) FROM source_cells),"
            " (SELECT count(*) FROM risk_source_history), (SELECT count(*) FROM events),"
            " (SELECT count(*) FROM cell_colour_history),"
            " (SELECT md5(string_agg(cell_id || colour || n_red || n_orange || n_yellow || n_blue, ','"
            "  ORDER BY cell_id)) FROM cell_risk)"
        ).fetchone()


def test_csv_import_assesses_and_colours_the_map(client, city_db_url, city_keys):
    rows = sample_rows(city_db_url)
    r = upload(client, city_keys["operator"], to_csv(rows))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["inserted"], body["updated"], body["unchanged"]) == (7, 0, 0)
    assert body["seconds"] >= 0
    got = sources(city_db_url)
    assert set(got) == {r["code"] for r in rows}
    for row in rows:
        s = got[row["code"]]
        assert s["created_by"] == s["updated_by"] == "test-operator" and s["version"] == 1
        if row["method"] == "LEC":
            assert s["score"] == pytest.approx(row["L"] * row["E"] * row["C"])
            assert s["level"] == spec_level("LEC", s["score"])
        elif row["method"] == "LS":
            assert s["score"] == row["L"] * row["S"] and s["level"] == spec_level("LS", s["score"])
    assert [got[c]["level"] for c in ("T-001", "T-002", "T-003", "T-004", "T-005", "T-006", "T-007")] == [
        "red", "yellow", "orange", "orange", "orange", "blue", "red"
    ]  # fmt: skip
    assert got["T-007"]["gtype"] == "POLYGON"
    assert_cells_coloured(city_db_url, list(got))
    # The API shows the source with its computed level and the cells it lies in.
    feature = client.get(f"/risk-sources/{got['T-001']['id']}").json()
    assert feature["properties"]["level"] == "red" and feature["properties"]["cells"]["comprehensive"]
    with psycopg.connect(city_db_url) as conn:
        n_hist = conn.execute("SELECT count(*) FROM risk_source_history WHERE op = 'create'").fetchone()[0]
        red_cells = conn.execute("SELECT count(*) FROM cell_risk WHERE colour = 'red'").fetchone()[0]
    assert n_hist == 7 and red_cells >= 2


def test_geojson_import_with_and_without_crs(client, city_db_url, city_keys):
    pts = inner_points(city_db_url, 3)
    feats = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(pts[0])},
         "properties": {"code": "G-1", "name": "港口码头", "category": "road_water_transport",
                        "method": "LS", "L": 3, "S": 5}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": list(pts[1])},
         "properties": {"code": "G-2", "name": "烟花爆竹仓库", "category": "fireworks",
                        "method": "LEC", "L": "10", "E": "6", "C": "7", "status": "suspended"}},
    ]  # fmt: skip
    r = upload(client, city_keys["admin"], orjson.dumps({"type": "FeatureCollection", "features": feats}),
               filename="sources.geojson")  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 2
    got = sources(city_db_url)
    assert got["G-1"]["level"] == "orange" and got["G-2"]["level"] == "red"  # 15; 420
    assert_cells_coloured(city_db_url, ["G-1"])  # G-2 is suspended: it does not colour the map

    # The same kind of file in the metric CGCS2000 / Gauss-Kruger CRS, named in a `crs` member.
    to_metric = Transformer.from_crs(4326, 4549, always_xy=True)
    x, y = to_metric.transform(*pts[2])
    doc = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::4549"}},
        "features": [
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
             "properties": {"code": "G-3", "name": "粉尘车间", "category": "dust_explosion",
                            "method": "LEC", "L": 3, "E": 6, "C": 15}},
        ],
    }  # fmt: skip
    r = upload(client, city_keys["operator"], orjson.dumps(doc), filename="metric.json")
    assert r.status_code == 200, r.text
    with psycopg.connect(city_db_url) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM risk_sources WHERE code = 'G-3'"
        ).fetchone()
    assert lon == pytest.approx(pts[2][0], abs=1e-7) and lat == pytest.approx(pts[2][1], abs=1e-7)
    assert sources(city_db_url)["G-3"]["level"] == "orange"  # 270
    assert_cells_coloured(city_db_url, ["G-3"])


def test_reimport_is_a_no_op_and_one_change_is_one_update(client, city_db_url, city_keys):
    rows = sample_rows(city_db_url)
    assert upload(client, city_keys["operator"], to_csv(rows)).status_code == 200
    before = state(city_db_url)
    r = upload(client, city_keys["operator"], to_csv(rows))
    assert r.status_code == 200, r.text
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (0, 0, 7)
    assert state(city_db_url) == before  # no version bump, no history, no event, no recolour
    assert {s["version"] for s in sources(city_db_url).values()} == {1}

    rows[0]["L"] = 1  # T-001: 1 × 6 × 15 = 90 → yellow (was red)
    r = upload(client, city_keys["admin"], to_csv(rows))
    assert r.status_code == 200, r.text
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (0, 1, 6)
    got = sources(city_db_url)["T-001"]
    assert (got["version"], got["level"], got["score"], got["updated_by"]) == (2, "yellow", 90, "test-admin")
    with psycopg.connect(city_db_url) as conn:
        hist = conn.execute(
            "SELECT version, op, by, changes FROM risk_source_history WHERE source_id = %s ORDER BY version",
            (got["id"],),
        ).fetchall()
        colour = conn.execute(
            "SELECT cr.colour FROM cells c JOIN cell_risk cr ON cr.cell_id = c.id"
            " WHERE c.layer = 'comprehensive' AND ST_Intersects(c.geom, ST_GeomFromText(%s, 4326))",
            (got["wkt"],),
        ).fetchone()[0]
    assert [(v, op, by) for v, op, by, _ in hist] == [
        (1, "create", "test-operator"),
        (2, "update", "test-admin"),
    ]
    assert hist[1][3]["L"] == [6, 1] and hist[1][3]["level"] == ["red", "yellow"]
    assert colour == "yellow"  # the cell held only this source: recoloured down in the same statement
    assert state(city_db_url)[2] == before[2] + 1  # exactly one new history row

    # New and changed rows in one file: both statement triggers fire on the one upsert.
    (x, y) = inner_points(city_db_url, 8)[7]
    rows[1]["name"] = "中山路加油站（改建）"
    rows.append(dict(code="T-008", name="新增工地", category="construction_site", method="LS", L=3, S=3,
                     lon=x, lat=y))  # fmt: skip
    r = upload(client, city_keys["operator"], to_csv(rows))
    assert (r.json()["inserted"], r.json()["updated"], r.json()["unchanged"]) == (1, 1, 6)
    got = sources(city_db_url)
    assert (got["T-002"]["version"], got["T-008"]["version"], got["T-008"]["level"]) == (2, 1, "yellow")
    assert_cells_coloured(city_db_url, list(got))


def test_bad_rows_are_all_reported_and_nothing_is_written(client, city_db_url, city_keys):
    assert upload(client, city_keys["operator"], to_csv(sample_rows(city_db_url)[:1])).status_code == 200
    before = state(city_db_url)
    (x, y), (x2, y2) = inner_points(city_db_url, 9)[7:9]
    good = dict(name="好的一行", category="gas", method="LEC", L=3, E=6, C=7, lon=x, lat=y)
    rows = [
        dict(good, code="B-1"),
        dict(good, code="B-2", category="volcano"),
        dict(good, code="B-3", L=7),
        dict(good, code="B-4", name=""),
        dict(good, code="B-5", lon=200),
        dict(good, code="B-6", lon=100, lat=30),
        dict(good, code="B-1", lon=x2, lat=y2),
    ]
    r = upload(client, city_keys["operator"], to_csv(rows))
    body = assert_problem(r, 422)
    report = body["report"]
    found = {(e["row"], e["field"]) for e in report["errors"]}
    assert found == {(2, "category"), (3, "L"), (4, "name"), (5, "lon"), (6, "location"), (7, "code")}, report
    assert report["error_count"] == 6
    by_row = {e["row"]: e for e in report["errors"]}
    assert by_row[2]["value"] == "volcano" and "Unknown category" in by_row[2]["problem"]
    assert "10, 6, 3, 1, 0.5, 0.2, 0.1" in by_row[3]["problem"]
    assert "outside the city" in by_row[6]["problem"]
    assert "first in row 1" in by_row[7]["problem"]
    assert all(e["line"] == e["row"] + 1 for e in report["errors"])  # the header is line 1
    assert "nothing was imported" in body["detail"]
    assert state(city_db_url) == before
    assert "B-1" not in sources(city_db_url)  # the good row was not written either


def test_file_level_problems(client, city_db_url, city_keys):
    r = upload(client, city_keys["operator"], b"code,name,lon,lat\nX-1,a,118.8,32.05\n")
    body = assert_problem(r, 422)
    assert (
        body["report"]["errors"][0]["field"] == "header"
        and "category" in body["report"]["errors"][0]["problem"]
    )
    r = upload(client, city_keys["operator"], b'{"type": "Feature"}', filename="x.geojson")
    assert "FeatureCollection" in assert_problem(r, 422)["report"]["errors"][0]["problem"]


def test_rights_and_formats(client, city_db_url, city_keys):
    content = to_csv(sample_rows(city_db_url)[:2])
    r = client.post("/risk-sources/import", files={"file": ("s.csv", io.BytesIO(content), "text/csv")})
    assert_problem(r, 401)
    assert_problem(upload(client, city_keys["viewer"], content), 403)
    assert_problem(upload(client, city_keys["worker"], content), 403)
    body = assert_problem(upload(client, city_keys["operator"], content, filename="sources.txt"), 415)
    assert ".csv" in body["detail"]
    assert_problem(upload(client, city_keys["operator"], content, filename="s.csv", format="kml"), 415)
    assert sources(city_db_url) == {}
    # An explicit format overrides the extension.
    r = upload(client, city_keys["operator"], content, filename="sources.txt", format="csv")
    assert r.status_code == 200, r.text
    assert r.json()["inserted"] == 2


def test_function_rolls_back_inside_a_callers_transaction(city_db_url):
    """Called directly (the CLI's path): a rejected file leaves the caller's transaction usable."""
    rows = sample_rows(city_db_url)
    bad = to_csv([dict(rows[0], code="Z-1", E=4)])
    with psycopg.connect(city_db_url) as conn:
        result = import_risk_sources(conn, bad, fmt="csv", actor="cli")
        assert not result.ok and result.errors[0]["field"] == "E"
        ok = import_risk_sources(conn, to_csv(rows), actor="cli")  # format sniffed from the bytes
        assert ok.ok and ok.inserted == 7 and set(ok.stages) >= {"read", "validate", "copy", "upsert"}
    assert len(sources(city_db_url)) == 7


def test_garbage_is_answered_as_a_report_never_a_500(client, city_keys):
    key = city_keys["operator"]
    payloads = [
        ("a.csv", b"\xff\xfe\x00\x81garbage"),
        ("a.csv", b"code,name,category,lon,lat\n\"unterminated,x,gas,118.8,32.05\n"),
        ("a.csv", b"code,name,category,lon,lat\nX-1,a\x00b,gas,118.8,32.05\n"),
        ("a.csv", b"code,name,category,lon,lat\nX-1," + b"n" * 200_000 + b",gas,118.8,32.05\n"),
        ("a.csv", b""),
        ("a.csv", b"code,name,category,lon,lat\n"),
        ("a.geojson", b"[1, 2]"),
        ("a.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": [],'
                      b' "geometry": {"type": "Point", "coordinates": {"x": 1}}}]}'),
        ("a.geojson", b'{"type": "FeatureCollection", "crs": {"type": "link"}, "features": []}'),
    ]  # fmt: skip
    for filename, content in payloads:
        body = assert_problem(upload(client, key, content, filename=filename), 422)
        assert body["report"]["errors"], (filename, content[:40])


def test_geopackage_in_its_crs_and_the_cli(client, city_db_url, city_keys, tmp_path):
    """GeoPackage (pyogrio) in CGCS2000 / GK 120E, converted; and `gridrisk risk-sources import FILE`."""
    import geopandas as gpd
    import shapely
    from typer.testing import CliRunner

    from gridrisk.cli import app

    pts = inner_points(city_db_url, 3)
    to_metric = Transformer.from_crs(4326, 4549, always_xy=True)
    frame = gpd.GeoDataFrame(
        {"code": ["K-1", "K-2"], "name": ["油库", "锅炉房"], "category": ["gas", "special_equipment"],
         "method": ["LEC", "LS"], "L": [6.0, 4.0], "E": [6.0, None], "C": [15.0, None], "S": [None, 5.0]},
        geometry=[shapely.Point(*to_metric.transform(*p)) for p in pts[:2]],
        crs="EPSG:4549",
    )  # fmt: skip
    path = tmp_path / "sources.gpkg"
    frame.to_file(path, driver="GPKG", layer="sources")
    r = upload(client, city_keys["operator"], path.read_bytes(), filename="sources.gpkg")
    assert r.status_code == 200, r.text
    got = sources(city_db_url)
    assert (got["K-1"]["level"], got["K-2"]["level"]) == ("red", "red")  # 540; 20
    with psycopg.connect(city_db_url) as conn:
        lon, lat = conn.execute(
            "SELECT ST_X(geom), ST_Y(geom) FROM risk_sources WHERE code = 'K-1'"
        ).fetchone()
    assert (lon, lat) == (pytest.approx(pts[0][0], abs=1e-7), pytest.approx(pts[0][1], abs=1e-7))

    csv_path = tmp_path / "more.csv"
    csv_path.write_bytes(to_csv(sample_rows(city_db_url)[:3]))
    run = CliRunner().invoke(
        app, ["risk-sources", "import", str(csv_path)], env={"GRIDRISK_DATABASE_URL": city_db_url}
    )
    assert run.exit_code == 0, run.output
    assert {"T-001", "T-002", "T-003", "K-1"} <= set(sources(city_db_url))
    bad = tmp_path / "bad.csv"
    bad.write_bytes(to_csv([dict(sample_rows(city_db_url)[0], code="Z-9", L=7)]))
    run = CliRunner().invoke(
        app, ["risk-sources", "import", str(bad)], env={"GRIDRISK_DATABASE_URL": city_db_url}
    )
    assert run.exit_code == 1 and "Z-9" not in sources(city_db_url)
