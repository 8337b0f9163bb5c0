"""Map images: the four-colour map of a layer, a district or a box, and a warning, as PNG pictures."""

from __future__ import annotations

import io

import psycopg
import shapely
from conftest import assert_problem
from PIL import Image
from test_warnings import post, warning

from gridrisk.services.map_image import COLOURS

FIRST = "SELECT min(id) FROM cells WHERE layer = 'safety'"


def _png(r, width: int, height: int) -> Image.Image:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content))
    assert image.size == (width, height)
    return image.convert("RGB")


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))


def test_the_map_of_a_layer_a_district_and_a_box(city_client, city_db_url):
    _png(city_client.get("/risk-map/comprehensive.png", params={"width": 800, "height": 600}), 800, 600)
    _png(
        city_client.get("/risk-map/safety.png", params={"district": "320104", "width": 640, "height": 480}),
        640,
        480,
    )
    # A box well inside one cell: the middle of the picture is that cell's colour.
    with psycopg.connect(city_db_url) as conn:
        conn.execute(f"UPDATE cell_risk SET colour = 'red' WHERE cell_id = ({FIRST})")
        wkb = conn.execute(f"SELECT ST_AsBinary(geom) FROM cells WHERE id = ({FIRST})").fetchone()[0]
    inside = shapely.point_on_surface(shapely.from_wkb(bytes(wkb)))
    d = 0.0002
    box = f"{inside.x - d},{inside.y - d},{inside.x + d},{inside.y + d}"
    image = _png(
        city_client.get("/risk-map/safety.png", params={"bbox": box, "width": 400, "height": 400}), 400, 400
    )
    assert image.getpixel((200, 200)) == _rgb(COLOURS["red"])


def test_bad_image_requests_are_4xx(city_client):
    assert_problem(city_client.get("/risk-map/nope.png"), 404)
    assert_problem(city_client.get("/risk-map/safety.png", params={"district": "999999"}), 404)
    assert_problem(city_client.get("/risk-map/safety.png", params={"width": 10_000}), 422)
    assert_problem(city_client.get("/warnings/987654/map.png"), 404)


def test_the_picture_of_a_warning(city_client, city_keys):
    body = post(city_client, city_keys["operator"], warning("IMG-1"), 201)
    _png(city_client.get(f"/warnings/{body['id']}/map.png", params={"width": 900, "height": 700}), 900, 700)
