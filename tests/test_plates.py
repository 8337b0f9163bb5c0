"""Address plates on the small demo city: what a plate resolves to, and the QR code printed on it."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from urllib.parse import quote

import psycopg
import pytest
import segno
from conftest import assert_problem, bearer, make_client

from gridrisk.api.routes.plates import qr_svg

SVG_NS = "{http://www.w3.org/2000/svg}"


def blue_point(url: str, district: str, nth: int = 0) -> tuple[float, float]:
    """A point inside a blue comprehensive cell of DISTRICT."""
    with psycopg.connect(url) as conn:
        x, y = conn.execute(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(c.geom) AS p FROM cells c"
            " JOIN cell_risk r ON r.cell_id = c.id WHERE c.layer = 'comprehensive' AND c.district_code = %s"
            " AND r.colour = 'blue' ORDER BY c.code OFFSET %s LIMIT 1) x",
            (district, nth),
        ).fetchone()
    return float(x), float(y)


def add_source(url: str, code: str, geom_sql: str, geom_args: tuple, *, plate: str | None, **cols) -> int:
    """Insert a risk source through SQL (the triggers assign its cells and recolour them)."""
    values = {"method": "LEC", "l": 6, "e": 6, "c": 15, "s": None, "address": None} | cols
    with psycopg.connect(url) as conn:
        return conn.execute(
            "INSERT INTO risk_sources (code, name, category, geom, method, l, e, c, s, address, plate_code,"
            f" created_by, updated_by) VALUES (%s, %s, 'gas', {geom_sql}, %s, %s, %s, %s, %s, %s, %s,"
            " 't', 't') RETURNING id",
            (
                code,
                f"source {code}",
                *geom_args,
                values["method"],
                values["l"],
                values["e"],
                values["c"],
                values["s"],
                values["address"],
                plate,
            ),
        ).fetchone()[0]


POINT = "ST_SetSRID(ST_MakePoint(%s, %s), 4326)"


def cell_state(url: str, layer: str, code: str) -> dict:
    with psycopg.connect(url) as conn:
        colour, computed, r, o, y, b = conn.execute(
            "SELECT colour, computed_colour, n_red, n_orange, n_yellow, n_blue FROM cell_risk"
            " WHERE layer = %s AND code = %s",
            (layer, code),
        ).fetchone()
    return {
        "colour": colour,
        "computed_colour": computed,
        "counts": {"red": r, "orange": o, "yellow": y, "blue": b},
    }


def source_cells(url: str, source_id: int) -> set[tuple[str, str]]:
    """(layer, code) of every cell the triggers assigned the source to."""
    with psycopg.connect(url) as conn:
        return set(
            conn.execute(
                "SELECT c.layer, c.code FROM source_cells s JOIN cells c ON c.id = s.cell_id"
                " WHERE s.source_id = %s",
                (source_id,),
            ).fetchall()
        )


def test_a_plate_resolves_to_its_location_cells_and_risk_sources(city_client, city_db_url):
    lon, lat = blue_point(city_db_url, "320102")
    source_id = add_source(
        city_db_url, "PL-1", POINT, (lon, lat), plate="NJ-XW-000001", address="玄武区中山路 1 号"
    )
    r = city_client.get("/plates/NJ-XW-000001")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plate_code"] == "NJ-XW-000001" and body["address"] == "玄武区中山路 1 号"
    assert body["location"]["type"] == "Point"
    assert body["location"]["coordinates"] == pytest.approx([lon, lat], abs=1e-7)
    assert body["inside_city"] is True
    # The four cells at the plate (the three grids and the district), with the map's colours.
    found = {layer: cell["code"] for layer, cell in {**body["cells"], **body["admin"]}.items() if cell}
    assert set(found.items()) == source_cells(city_db_url, source_id)
    assert set(found) == {"comprehensive", "emergency", "safety", "district"}
    for layer, code in found.items():
        cell = body["cells"].get(layer) or body["admin"][layer]
        assert {k: cell[k] for k in ("colour", "computed_colour", "counts")} == cell_state(
            city_db_url, layer, code
        )
        assert cell["colour"] == "red"  # LEC 6 × 6 × 15 = 540 > 320
    assert body["risk_sources"] == [
        {
            "id": source_id,
            "code": "PL-1",
            "name": "source PL-1",
            "category": "gas",
            "level": "red",
            "status": "active",
        }
    ]
    # The same cells, in the same shape, as "which cell am I in" gives for that point.
    at = city_client.get("/cells/at", params={"lon": lon, "lat": lat}).json()
    assert (body["cells"], body["admin"]) == (at["cells"], at["admin"])


def test_a_polygon_source_plate_is_located_inside_the_polygon(city_client, city_db_url):
    lon, lat = blue_point(city_db_url, "320104")
    square = "ST_Expand(ST_SetSRID(ST_MakePoint(%s, %s), 4326), 0.0004)"
    source_id = add_source(
        city_db_url, "PL-2", square, (lon, lat), plate="NJ-QH-000002", method="LS", l=3, s=5
    )
    body = city_client.get("/plates/NJ-QH-000002").json()
    x, y = body["location"]["coordinates"]
    with psycopg.connect(city_db_url) as conn:
        inside = conn.execute(
            "SELECT ST_Contains(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) FROM risk_sources"
            " WHERE id = %s",
            (x, y, source_id),
        ).fetchone()[0]
    assert inside
    assert body["risk_sources"][0]["level"] == "orange"  # LS 3 × 5 = 15
    grid = body["cells"]["comprehensive"]
    assert ("comprehensive", grid["code"]) in source_cells(city_db_url, source_id)
    assert grid["colour"] == cell_state(city_db_url, "comprehensive", grid["code"])["colour"] == "orange"


def test_an_unknown_plate_is_a_404_problem(city_client):
    body = assert_problem(city_client.get("/plates/NJ-NOPE-404"), 404)
    assert "NJ-NOPE-404" in body["detail"] and "plate" in body["detail"]


def svg_modules(svg: bytes) -> tuple[set[tuple[int, int]], int]:
    """Decode segno's SVG path (M x y, then runs of `h n` and relative `m dx dy`) into dark modules."""
    root = ET.fromstring(svg)
    path = root.find(f"{SVG_NS}path")
    scale = float(re.fullmatch(r"scale\(([\d.]+)\)", path.get("transform")).group(1))
    border = 4
    size = round(float(root.get("width")) / scale) - 2 * border
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for cmd, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?:\s(-?[\d.]+))?", path.get("d")):
        if cmd == "M":
            x, y = float(a), float(b)
        elif cmd == "m":
            x, y = x + float(a), y + float(b)
        else:
            for i in range(int(a)):
                dark.add((int(y) - border, int(x) + i - border))
            x += float(a)
    return dark, size


def test_the_qr_code_encodes_the_plate_url(city_client, city_db_url):
    plate = "玄武/中山路 1号"  # every character that needs care in a URL path
    lon, lat = blue_point(city_db_url, "320102", 1)
    source_id = add_source(city_db_url, "PL-3", POINT, (lon, lat), plate=plate)
    r = city_client.get(f"/risk-sources/{source_id}/qr.svg")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/svg+xml"
    assert "max-age" in r.headers["cache-control"] and r.headers["cache-control"].startswith("public")
    etag = r.headers["etag"]
    root = ET.fromstring(r.content)  # well-formed XML ...
    assert root.tag == f"{SVG_NS}svg"  # ... with an <svg> root
    url = "http://testserver/plates/" + quote(plate, safe="")
    assert root.find(f"{SVG_NS}desc").text == url
    # The modules drawn are exactly those of the QR code (level M) of the plate's URL.
    expected = segno.make(url, error="m", micro=False, boost_error=False)
    dark, size = svg_modules(r.content)
    assert size == len(expected.matrix)
    assert dark == {(i, j) for i, row in enumerate(expected.matrix) for j, v in enumerate(row) if v}
    assert r.content == qr_svg(url, plate)
    # Scanning it leads back to this plate.
    scanned = city_client.get(url)
    assert scanned.status_code == 200, scanned.text
    assert scanned.json()["plate_code"] == plate
    assert scanned.json()["risk_sources"][0]["id"] == source_id
    # Revalidation is cheap.
    again = city_client.get(f"/risk-sources/{source_id}/qr.svg", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["etag"] == etag and not again.content


def test_qr_of_a_source_without_plate_or_an_unknown_source_is_404(city_client, city_db_url):
    source_id = add_source(city_db_url, "PL-4", POINT, blue_point(city_db_url, "320104", 1), plate=None)
    body = assert_problem(city_client.get(f"/risk-sources/{source_id}/qr.svg"), 404)
    assert "no address plate" in body["detail"]
    body = assert_problem(city_client.get("/risk-sources/987654321/qr.svg"), 404)
    assert "No risk source with id 987654321" in body["detail"]


def test_plates_need_a_key_when_reads_are_private(city_db_url, city_keys):
    source_id = add_source(
        city_db_url, "PL-5", POINT, blue_point(city_db_url, "320102", 2), plate="NJ-PRIV-1"
    )
    with make_client(city_db_url, public_read=False) as client:
        assert_problem(client.get("/plates/NJ-PRIV-1"), 401)
        assert_problem(client.get(f"/risk-sources/{source_id}/qr.svg"), 401)
        viewer = bearer(city_keys["viewer"])
        assert client.get("/plates/NJ-PRIV-1", headers=viewer).status_code == 200
        r = client.get(f"/risk-sources/{source_id}/qr.svg", headers=viewer)
        assert r.status_code == 200 and r.headers["cache-control"].startswith("private")
