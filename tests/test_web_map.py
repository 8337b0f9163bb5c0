"""The web map at `/`: its assets over HTTP, and the page itself in a real headless Chromium.

The browser test drives Debian's chromium (scripts/install-browser.sh) through Playwright against a
live server on the small test city: the map must render coloured cells from the vector tiles, show a
cell's details on click, turn a cell red within seconds of an API edit (over /events, no reload),
answer "where am I", show a targeted warning's area and its work orders coloured by status (asking
for a key with the `field` right, then following the orders live), and log no console error on the way.
Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import base64
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import bearer
from live import live_server

from gridrisk.api.routes import web

CHROMIUM = os.environ.get("GRIDRISK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
VENDOR = web.WEB_DIR / "vendor" / "maplibre-gl"
# Headless Chromium with software WebGL (SwiftShader): no GPU here. As root, no sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
# What a cell looks like on screen: its colour at fill-opacity 0.7 over the #eef1f4 background.
HEX = {"red": "#e53935", "orange": "#fb8c00", "yellow": "#fdd835", "blue": "#1e88e5"}
BACKGROUND = (0xEE, 0xF1, 0xF4)


def _blend(hex_colour: str, alpha: float = 0.7) -> tuple[float, ...]:
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return tuple(alpha * c + (1 - alpha) * b for c, b in zip(rgb, BACKGROUND, strict=True))


SHOWN = {name: _blend(h) for name, h in HEX.items()}


def nearest_colour(rgb) -> str:
    return min(SHOWN, key=lambda name: sum((a - b) ** 2 for a, b in zip(SHOWN[name], rgb, strict=False)))


# ---------------------------------------------------------------------------------------------
# Assets over HTTP (no browser)


def test_page_and_assets_are_served_with_types_and_caching(city_client):
    page = city_client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["cache-control"] == "no-cache"
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    # Every asset the page names carries its content hash, and is served under that name.
    refs = re.findall(r'(?:src|href)="(web/[^"?]+)\?v=([0-9a-f]{16})"', page.text)
    assert {r for r, _ in refs} >= {
        "web/app.js",
        "web/app.css",
        "web/vendor/maplibre-gl/maplibre-gl.js",
        "web/vendor/maplibre-gl/maplibre-gl.css",
    }
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    for path, version in refs:
        r = city_client.get(f"/{path}", params={"v": version})
        assert r.status_code == 200, path
        assert r.headers["content-type"] == types[Path(path).suffix]
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["etag"] == f'"{version}"'
        # A stale or missing hash is revalidated instead of cached for a year.
        assert city_client.get(f"/{path}", params={"v": "0" * 16}).headers["cache-control"] == "no-cache"
        assert city_client.get(f"/{path}", headers={"If-None-Match": f'"{version}"'}).status_code == 304
    again = city_client.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert city_client.head("/").status_code == 200

    for bad in ("/web/nope.js", "/web/../api/routes/web.py", "/web/%2e%2e/main.py", "/web/index.html"):
        r = city_client.get(bad)
        assert r.status_code == 404, bad
        assert r.headers["content-type"].startswith("application/problem+json")
    # The page does not appear among the API's operations.
    assert "/" not in city_client.get("/openapi.json").json()["paths"]


def test_maplibre_is_vendored_with_its_licence_and_pinned_version():
    version = (VENDOR / "VERSION").read_text()
    pinned = re.search(r"^version: (\d+\.\d+\.\d+)$", version, re.M).group(1)
    assert re.search(r"^integrity: sha512-[A-Za-z0-9+/=]{88}$", version, re.M)
    assert (
        f'VERSION="${{1:-{pinned}}}"'
        in (Path(__file__).parents[1] / "scripts/vendor-maplibre.sh").read_text()
    )
    assert f"maplibre-gl-js/blob/v{pinned}/LICENSE.txt" in (VENDOR / "maplibre-gl.js").read_text()[:400]
    assert "Redistribution and use in source and binary forms" in (VENDOR / "LICENSE.txt").read_text()
    # Our own files make no request outside the service (the vendored library only links its site).
    own = ["index.html", "app.css", *(p.name for p in web.WEB_DIR.glob("*.js"))]
    assert {"app.js", "common.js", "map.js", "warnings.js", "live.js", "where.js"} <= set(own)
    for name in own:
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", (web.WEB_DIR / name).read_text()), name


# ---------------------------------------------------------------------------------------------
# The page in a real browser


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/install-browser.sh"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _test_cells(url: str) -> dict:
    """Three comprehensive cells: B (the one edited) and two neighbours A and C, each with the centre of
    its largest inscribed circle (the point furthest inside it), B's grid worker, and B's district."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            WITH b AS (SELECT * FROM cells WHERE layer = 'comprehensive' ORDER BY code LIMIT 1),
                 n AS (SELECT c.* FROM cells c, b WHERE c.layer = 'comprehensive' AND c.id <> b.id
                       AND ST_Touches(c.geom, b.geom) ORDER BY c.code LIMIT 2),
                 pick AS (SELECT 'B' AS k, * FROM b UNION ALL
                          SELECT chr(65 + 2 * (row_number() OVER (ORDER BY code))::int - 2), * FROM n)
            SELECT k, code, ST_X(m.center) AS lon, ST_Y(m.center) AS lat
            FROM pick, ST_MaximumInscribedCircle(pick.geom) m ORDER BY k
            """
        ).fetchall()
        cells = {k: {"code": code, "lon": lon, "lat": lat} for k, code, lon, lat in rows}
        assert set(cells) == {"A", "B", "C"}, cells
        (worker,) = conn.execute(
            "SELECT name FROM cell_workers WHERE layer = 'comprehensive' AND cell_code = %s LIMIT 1",
            (cells["B"]["code"],),
        ).fetchone()
    cells["worker"] = worker
    return cells


def _source(code: str, cell: dict, assessment: dict) -> dict:
    return {
        "code": code,
        "name": f"测试危化品仓库 {code}",
        "category": "hazardous_chemicals",
        "geometry": {"type": "Point", "coordinates": [cell["lon"], cell["lat"]]},
        "assessment": assessment,
    }


IDLE = "() => new Promise(r => { gridrisk.map.once('idle', r); gridrisk.map.triggerRepaint(); })"
RENDERED = """() => {
  const seen = {};
  for (const f of gridrisk.map.queryRenderedFeatures({layers: ['cells-fill']})) {
    const state = gridrisk.map.getFeatureState(f);
    seen[f.properties.code] = state.colour || f.properties.colour;
  }
  return seen;
}"""


def _pixels(page, context, points: list[tuple[float, float]]) -> list[tuple[int, int, int]]:
    """The colours on screen at lon/lat POINTS, read from a screenshot (what a person would see)."""
    page.evaluate(IDLE)
    xy = page.evaluate(
        "pts => pts.map(p => { const q = gridrisk.map.project(p); return [q.x, q.y]; })", points
    )
    box = page.locator("#map").bounding_box()
    png = page.screenshot()
    # The browser decodes the PNG for us: draw it on a 2D canvas in a blank page and read pixels.
    scratch = context.new_page()
    try:
        return scratch.evaluate(
            """async ([b64, pts]) => {
                const img = new Image(); img.src = 'data:image/png;base64,' + b64; await img.decode();
                const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
                const g = c.getContext('2d'); g.drawImage(img, 0, 0);
                const at = ([x, y]) => g.getImageData(Math.round(x), Math.round(y), 1, 1).data;
                return pts.map(p => Array.from(at(p).slice(0, 3)));
            }""",
            [
                base64.b64encode(png).decode(),
                [(box["x"] + x, box["y"] + y) for x, y in xy],
            ],
        )
    finally:
        scratch.close()


def test_web_map_in_chromium(browser, city_db_url, city_keys):
    ARTIFACTS.mkdir(exist_ok=True)
    cells = _test_cells(city_db_url)
    a, b, c = cells["A"], cells["B"], cells["C"]
    operator = bearer(city_keys["operator"])
    started = time.monotonic()

    with live_server(city_db_url) as base, httpx.Client(base_url=base, timeout=10) as api:
        # Before the page opens: an orange source in A (LEC 6 × 6 × 7 = 252) and an open shelter in C.
        lec_orange = {"method": "LEC", "L": 6, "E": 6, "C": 7}
        r = api.post("/risk-sources", json=_source("WEB-A", a, lec_orange), headers=operator)
        assert r.status_code == 201, r.text
        shelter = {
            "code": "BN-WEB-C",
            "name": "测试紧急避难场所 C",
            "class": "emergency",
            "geometry": {"type": "Point", "coordinates": [c["lon"], c["lat"]]},
            "capacity": 800,
            "status": "open",
        }
        r = api.post("/shelters", json=shelter, headers=operator)
        assert r.status_code == 201, r.text

        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        # (Tile requests the map cancels itself when the view moves are not failures.)
        page.on(
            "requestfailed",
            lambda q: (
                "ERR_ABORTED" not in (q.failure or "") and problems.append(f"failed: {q.url} {q.failure}")
            ),
        )
        external: list[str] = []
        page.on(
            "request",
            lambda q: (
                q.url.startswith(("http:", "https:", "ws:"))
                and not q.url.startswith(base)
                and external.append(q.url)
            ),
        )

        page.goto(base + "/#lang=en&layer=comprehensive")  # the English page (Chinese is the default)
        page.wait_for_selector("html[data-map=ready]", timeout=20_000)
        page.wait_for_selector("#live.on", timeout=10_000)  # following /events
        assert not problems, problems
        assert page.get_attribute("html", "lang") == "en" and page.inner_text("#h-where") == "Where am I"

        # The map renders the layer's cells from the tiles, with their colours.
        page.evaluate(
            "([lon, lat]) => gridrisk.map.jumpTo({center: [lon, lat], zoom: 14})", [b["lon"], b["lat"]]
        )
        page.evaluate(IDLE)
        rendered = page.evaluate(RENDERED)
        assert len(rendered) >= 10, rendered
        assert rendered[a["code"]] == "orange" and rendered[b["code"]] == "blue"
        assert set(rendered.values()) == {"orange", "blue"}
        assert page.inner_text("#legend output[data-count=orange]") == "1"

        # "Export image" opens the four-colour map of the view as a PNG.
        with context.expect_page() as opened:
            page.click("#export-image")
        picture = opened.value
        picture.wait_for_load_state()
        assert "/risk-map/comprehensive.png?bbox=" in picture.url
        image = api.get(picture.url.removeprefix(base))
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        picture.close()

        # What is on screen: hide the overlays (so no symbol covers a cell), then read the pixels.
        for overlay in ("risk_sources", "shelters", "hazard_points"):
            page.uncheck(f"#show-{overlay}")
        pix_a, pix_b = _pixels(page, context, [(a["lon"], a["lat"]), (b["lon"], b["lat"])])
        assert nearest_colour(pix_a) == "orange", pix_a
        assert nearest_colour(pix_b) == "blue", pix_b

        # Click on B: a popup with its code, colour, counts and grid worker.
        xy = page.evaluate(
            "p => { const q = gridrisk.map.project(p); return [q.x, q.y]; }", [b["lon"], b["lat"]]
        )
        page.locator("#map canvas").click(position={"x": xy[0], "y": xy[1]})
        popup = page.locator(f".maplibregl-popup .cell-popup[data-code='{b['code']}']")
        popup.locator("dl").wait_for(timeout=10_000)
        text = popup.inner_text()
        assert b["code"] in text and "BLUE" in text.upper() and "red 0" in text and cells["worker"] in text
        page.evaluate("() => { window.notReloaded = true; }")

        # An edit elsewhere (the API) turns B red on the open page, live.
        edited = time.monotonic()
        red = {"method": "direct", "level": "red", "reason": "web map test"}
        r = api.post("/risk-sources", json=_source("WEB-B", b, red), headers=operator)
        assert r.status_code == 201, r.text
        page.wait_for_function(f"() => ({RENDERED})()[{b['code']!r}] === 'red'", timeout=5_000, polling=100)
        live_s = time.monotonic() - edited
        (pix_b,) = _pixels(page, context, [(b["lon"], b["lat"])])
        assert nearest_colour(pix_b) == "red", pix_b
        assert page.evaluate("() => window.notReloaded === true")
        popup.get_by_text("red 1").wait_for(timeout=5_000)  # the open popup refreshed itself
        page.wait_for_function("() => document.querySelector('#legend output[data-count=red]').value === '1'")
        page.screenshot(path=ARTIFACTS / "web_map.png")

        # Click a feature: the red source in B, with its details.
        page.check("#show-risk_sources")
        page.evaluate(IDLE)
        page.locator("#map canvas").click(position={"x": xy[0], "y": xy[1]})
        feature = page.locator(".maplibregl-popup .feature-popup[data-collection=risk_sources]")
        feature.locator("dl").wait_for(timeout=10_000)
        assert (
            "测试危化品仓库 WEB-B" in feature.inner_text() and "Hazardous chemicals" in feature.inner_text()
        )

        # Where am I (typed coordinate): C is highlighted, its cells listed, the shelter nearest.
        page.check("#show-shelters")
        page.fill("#where-lon", f"{c['lon']:.7f}")
        page.fill("#where-lat", f"{c['lat']:.7f}")
        page.click("#where-form button[type=submit]")
        page.locator(".where-shelters li").first.wait_for(timeout=10_000)
        where = page.inner_text("#where-result")
        assert c["code"] in where and "Nearest shelters" in where
        assert page.locator(".where-shelters li").first.inner_text().startswith("测试紧急避难场所 C")
        assert page.locator(f".where-cells li[data-code='{c['code']}'] .badge").inner_text().lower() == "blue"
        assert page.evaluate("() => gridrisk.map.getFilter('cells-where')") == [
            "==",
            ["get", "code"],
            c["code"],
        ]
        page.evaluate(IDLE)
        page.screenshot(path=ARTIFACTS / "web_map_where.png")

        # A phone: the panel folds away behind a button, the map takes the screen.
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        small = phone.new_page()
        small.on("console", lambda m: m.type == "error" and problems.append(f"phone console: {m.text}"))
        small.on("pageerror", lambda e: problems.append(f"phone page error: {e}"))
        small.goto(base + "/")
        small.wait_for_selector("html[data-map=ready]", timeout=20_000)
        assert small.locator("#panel").is_hidden() and small.locator("#panel-toggle").is_visible()
        assert small.locator("#map").bounding_box()["width"] == 390
        assert small.evaluate("() => gridrisk.map.queryRenderedFeatures({layers: ['cells-fill']}).length") > 0
        small.click("#panel-toggle")
        assert small.locator("#panel").is_visible() and small.locator("#grid-layer").is_visible()
        small.screenshot(path=ARTIFACTS / "web_map_phone.png")
        phone.close()

        assert not problems, problems
        assert not external, external
        context.close()

    total_s = time.monotonic() - started
    print(f"web map: the cell turned red {live_s:.2f} s after the API edit; whole test {total_s:.1f} s")
    assert live_s < 5


def test_web_map_asks_for_a_key_when_reads_are_private(browser, city_db_url, city_keys):
    """With GRIDRISK_PUBLIC_READ=false the page asks for a key, then sends it with every request:
    the API, the tiles and the event stream (read with fetch, which can send the header)."""
    b = _test_cells(city_db_url)["B"]
    with live_server(city_db_url, public_read=False) as base, httpx.Client(base_url=base, timeout=10) as api:
        context = browser.new_context(viewport={"width": 1024, "height": 700})
        page = context.new_page()
        page_errors: list[str] = []
        page.on("pageerror", lambda e: page_errors.append(str(e)))
        page.goto(base + "/")
        page.wait_for_selector("details.key[open]", timeout=10_000)
        assert page.inner_text("#live") == "需要 API 密钥"

        page.fill("#api-key", city_keys["viewer"])
        page.click("#api-key-form button[type=submit]")  # stored for this tab; the page reloads
        page.wait_for_selector("html[data-map=ready]", timeout=20_000)
        page.wait_for_selector("#live.on", timeout=10_000)
        page.evaluate(
            "([lon, lat]) => gridrisk.map.jumpTo({center: [lon, lat], zoom: 14})", [b["lon"], b["lat"]]
        )
        page.evaluate(IDLE)
        assert page.evaluate(RENDERED)[b["code"]] == "blue"

        red = {"method": "direct", "level": "red", "reason": "web map test"}
        r = api.post("/risk-sources", json=_source("WEB-KEY", b, red), headers=bearer(city_keys["operator"]))
        assert r.status_code == 201, r.text
        page.wait_for_function(f"() => ({RENDERED})()[{b['code']!r}] === 'red'", timeout=5_000, polling=100)
        assert not page_errors, page_errors
        context.close()


# The page's work-order colours by status (common.js ORDER_STATUSES), drawn at full opacity.
ORDER_HEX = {
    "open": "#c51162",
    "acknowledged": "#ffab00",
    "in_progress": "#6200ea",
    "done": "#00c853",
    "cancelled": "#9e9e9e",
}
ORDERS_SHOWN = """() => Object.fromEntries(gridrisk.map.queryRenderedFeatures({layers: ['warning-orders']})
  .map(f => [f.id, f.properties.status]))"""


def nearest_status(rgb) -> str:
    def dist(name: str) -> int:
        ref = [int(ORDER_HEX[name][i : i + 2], 16) for i in (1, 3, 5)]
        return sum((a - b) ** 2 for a, b in zip(ref, rgb, strict=False))

    return min(ORDER_HEX, key=dist)


def test_web_map_shows_a_warning_and_its_orders_live(browser, city_db_url, city_keys):
    """A red rainstorm over three targets: the page lists it; selecting it without a key asks for an
    operator or worker key; with one, the area and the orders are drawn coloured by status, a click
    shows an order (an evacuation names its shelter), and an acknowledgement recolours it live."""
    ARTIFACTS.mkdir(exist_ok=True)
    cells = _test_cells(city_db_url)
    a, b, c = cells["A"], cells["B"], cells["C"]
    operator = bearer(city_keys["operator"])

    with live_server(city_db_url) as base, httpx.Client(base_url=base, timeout=10) as api:
        # Targets a rainstorm exposes: waterlogging in A, a dangerous building in C (evacuated at red,
        # to the open shelter in B), a construction site in B.
        def hazard(code: str, kind: str, cell: dict) -> dict:
            return {
                "code": code,
                "name": f"测试隐患点 {code}",
                "kind": kind,
                "geometry": {"type": "Point", "coordinates": [cell["lon"], cell["lat"]]},
                "level": "orange",
                "threatened_persons": 30,
            }

        for body in (hazard("WEB-WL-A", "waterlogging", a), hazard("WEB-DB-C", "dangerous_building", c)):
            r = api.post("/hazard-points", json=body, headers=operator)
            assert r.status_code == 201, r.text
        site = {
            **_source("WEB-CS-B", b, {"method": "LEC", "L": 3, "E": 6, "C": 7}),
            "category": "construction_site",
        }
        r = api.post("/risk-sources", json=site, headers=operator)
        assert r.status_code == 201, r.text
        shelter = {
            "code": "BN-WEB-WARN",
            "name": "测试避难场所 B",
            "class": "emergency",
            "geometry": {"type": "Point", "coordinates": [b["lon"] + 0.0004, b["lat"] + 0.0004]},
            "capacity": 500,
            "status": "open",
        }
        r = api.post("/shelters", json=shelter, headers=operator)
        assert r.status_code == 201, r.text
        # A team that can go into a dangerous building, near C, and a depot with relief supplies near B.
        team = {
            "code": "JYD-WEB",
            "name": "测试救援队",
            "team_type": "fire_station",
            "sector": "消防救援",
            "capabilities": ["structural_collapse", "search_rescue"],
            "members": 30,
            "geometry": {"type": "Point", "coordinates": [c["lon"] - 0.002, c["lat"] + 0.001]},
        }
        depot = {
            "code": "WZK-WEB",
            "name": "测试物资储备点",
            "level": "street",
            "geometry": {"type": "Point", "coordinates": [b["lon"] - 0.001, b["lat"] - 0.001]},
            "stock": {"tents": 50, "quilts": 200, "drinking_water": 100, "instant_food": 100},
        }
        for path, body in (("/rescue-teams", team), ("/supply-depots", depot)):
            r = api.post(path, json=body, headers=operator)
            assert r.status_code == 201, r.text

        lons = [p["lon"] for p in (a, b, c)]
        lats = [p["lat"] for p in (a, b, c)]
        w, s, e, n = min(lons) - 0.003, min(lats) - 0.003, max(lons) + 0.003, max(lats) + 0.003
        now = datetime.now(UTC)

        def rainstorm(identifier: str, level: str, headline: str) -> dict:
            ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
            return {
                "identifier": identifier,
                "sender": "南京市气象台",
                "hazard_type": "rainstorm",
                "level": level,
                "valid_from": (now - timedelta(minutes=10)).isoformat(),
                "valid_until": (now + timedelta(hours=6)).isoformat(),
                "headline": headline,
                "area": {"geometry": {"type": "Polygon", "coordinates": [ring]}},
            }

        r = api.post(
            "/warnings",
            json=rainstorm("NJ-WEB-RAIN", "red", "南京市气象台发布暴雨红色预警"),
            headers=operator,
        )
        assert r.status_code == 201, r.text
        wid = r.json()["id"]
        items = api.get(f"/work-orders?warning={wid}", headers=operator).json()["items"]
        by_target = {o["target"]["code"]: o for o in items}
        assert set(by_target) == {"WEB-WL-A", "WEB-DB-C", "WEB-CS-B"}, by_target
        assert {o["status"] for o in items} == {"open"}
        evacuation = by_target["WEB-DB-C"]
        assert evacuation["action"] == "evacuate" and evacuation["shelter"]["name"] == "测试避难场所 B"

        context = browser.new_context(viewport={"width": 1100, "height": 720})
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and problems.append(m.text))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(base + "/#layer=comprehensive")
        page.wait_for_selector("html[data-map=ready]", timeout=20_000)

        # Listed; selected without a key, the orders ask for an operator or worker key (the area shows).
        item = page.locator(f".warning-item[data-id='{wid}']")
        assert "暴雨红色预警" in item.inner_text() and "工单 3 个" in item.inner_text()
        item.click()
        note = page.locator("#warning-note .needs-key")
        note.wait_for(timeout=10_000)
        assert "值班员或网格员密钥" in note.inner_text()
        assert page.locator("details.key[open]").count() == 1
        page.evaluate(IDLE)
        assert page.evaluate(ORDERS_SHOWN) == {}
        assert (
            page.evaluate("() => gridrisk.map.queryRenderedFeatures({layers: ['warning-area-fill']}).length")
            > 0
        )
        # The browser logs the refused request itself; nothing else may go wrong.
        assert all("status of 401" in p for p in problems), problems
        problems.clear()

        # With the operator key (the page reloads and keeps the warning shown): area and orders, all open.
        page.fill("#api-key", city_keys["operator"])
        page.click("#api-key-form button[type=submit]")
        page.wait_for_selector("html[data-map=ready]", timeout=20_000)
        page.wait_for_selector("#live.on", timeout=10_000)
        assert f"warning={wid}" in page.evaluate("() => location.hash")
        page.wait_for_function(
            f"() => Object.keys(({ORDERS_SHOWN})()).length === 3", timeout=10_000, polling=100
        )
        shown = page.evaluate(ORDERS_SHOWN)
        assert shown == {str(o["id"]): "open" for o in items}, shown
        areas = page.evaluate(
            """() => ['warning-area-fill', 'warning-area-line'].map(id =>
                 gridrisk.map.queryRenderedFeatures({layers: [id]}).map(f => [f.id, f.properties.level]))"""
        )
        assert all(layer and all(f == [wid, "red"] for f in layer) for layer in areas), areas
        assert page.inner_text("#order-legend [data-status=open] output") == "3"
        # The response report: figures in the panel, the team and the depot on the map.
        page.locator("#warning-report dl").wait_for(timeout=10_000)
        report = page.inner_text("#warning-report")
        for expected in ("响应报告", "工单", "救援队伍", "调派 1", "物资", "导出 CSV"):
            assert expected in report, (expected, report)
        page.wait_for_function(
            "() => gridrisk.map.queryRenderedFeatures({layers: ['warning-resources']}).length === 2",
            timeout=10_000,
            polling=100,
        )
        kinds = page.evaluate(
            "() => gridrisk.map.queryRenderedFeatures({layers: ['warning-resources']})"
            ".map(f => f.properties.kind)"
        )
        assert sorted(kinds) == ["depot", "team"]
        points = [(a["lon"], a["lat"]), (b["lon"], b["lat"]), (c["lon"], c["lat"])]
        assert [nearest_status(p) for p in _pixels(page, context, points)] == ["open"] * 3

        # Click the evacuation: action, target, status, due, cell and its worker, the shelter.
        def click_at(lon: float, lat: float) -> None:
            xy = page.evaluate("p => { const q = gridrisk.map.project(p); return [q.x, q.y]; }", [lon, lat])
            page.locator("#map canvas").click(position={"x": xy[0], "y": xy[1]})

        click_at(c["lon"], c["lat"])
        popup = page.locator(f".maplibregl-popup .order-popup[data-id='{evacuation['id']}']")
        popup.locator("dl").wait_for(timeout=10_000)
        text = popup.inner_text()
        for expected in (
            "转移避险",
            "测试隐患点 WEB-DB-C",
            "隐患点, 危房",
            "待接收",
            "时限",
            c["code"],
            "测试避难场所 B",
            "测试救援队",
        ):
            assert expected in text, (expected, text)
        page.evaluate("() => gridrisk.popup && gridrisk.popup.remove()")

        # Acknowledge A's order through the API: the page recolours it (and its open popup), no reload.
        order = by_target["WEB-WL-A"]
        click_at(a["lon"], a["lat"])
        popup = page.locator(f".maplibregl-popup .order-popup[data-id='{order['id']}'][data-status=open]")
        popup.wait_for(timeout=10_000)
        page.evaluate("() => { window.notReloaded = true; }")
        r = api.patch(
            f"/work-orders/{order['id']}",
            json={"status": "acknowledged"},
            headers={**operator, "If-Match": f'"{order["version"]}"'},
        )
        assert r.status_code == 200, r.text
        acked = time.monotonic()
        page.wait_for_function(
            f"() => ({ORDERS_SHOWN})()[{str(order['id'])!r}] === 'acknowledged'", timeout=5_000, polling=100
        )
        live_s = time.monotonic() - acked
        page.locator(f".order-popup[data-id='{order['id']}'][data-status=acknowledged]").wait_for(
            timeout=5_000
        )
        page.evaluate("() => gridrisk.popup && gridrisk.popup.remove()")
        assert [nearest_status(p) for p in _pixels(page, context, points)] == ["acknowledged", "open", "open"]
        assert page.inner_text("#order-legend [data-status=acknowledged] output") == "1"
        assert page.evaluate("() => window.notReloaded === true")
        page.screenshot(path=ARTIFACTS / "web_map_warning.png")

        # A new warning (a `warning` event) joins the list; the one shown stays selected.
        r = api.post(
            "/warnings", json=rainstorm("NJ-WEB-RAIN-2", "orange", "暴雨橙色预警（测试）"), headers=operator
        )
        assert r.status_code == 201, r.text
        page.locator(f".warning-item[data-id='{r.json()['id']}']").wait_for(timeout=5_000)
        assert page.get_attribute(f".warning-item[data-id='{wid}']", "aria-pressed") == "true"
        assert page.evaluate("() => window.notReloaded === true")
        assert not problems, problems
        context.close()
    print(f"web map: the order turned acknowledged {live_s:.2f} s after the API edit")


def test_api_docs_render_from_this_service_alone(browser, city_db_url):
    """/docs and the OGC API's description page draw Swagger UI from the vendored copy: every request
    they make stays on the service (no CDN), as on a closed intranet."""
    with live_server(city_db_url) as base:
        context = browser.new_context()
        page = context.new_page()
        outside: list[str] = []
        page.on("request", lambda q: not q.url.startswith((base, "data:", "blob:")) and outside.append(q.url))
        for path, operation in (("/docs", "/cells/at"), ("/ogc/api?f=html", "/collections")):
            page.goto(base + path)
            page.locator(".swagger-ui .opblock").first.wait_for(timeout=20_000)
            assert operation in page.inner_text(".swagger-ui"), path
        assert not outside, outside
        context.close()
