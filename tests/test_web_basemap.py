"""The web map in its users' language and over a basemap: Chinese by default with an English switch,
words for the API's codes from GET /vocabulary, and a configured XYZ basemap served by a local tile
server — in WGS 84 drawn as is, in GCJ-02 (Amap, Tencent) warped so that it lines up with the
overlays, which stay in WGS 84. Checked on screen, in Debian's Chromium."""

from __future__ import annotations

import io
import math
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from live import live_server
from PIL import Image, ImageDraw
from pydantic import ValidationError
from test_web_map import CHROMIUM_ARGS, IDLE, _pixels, _test_cells, browser  # noqa: F401

from gridrisk.api.routes.web import CSP, basemap_origins
from gridrisk.geometry.gcj02 import wgs84_to_gcj02
from gridrisk.settings import Settings
from gridrisk.vocabulary import LABEL_CODES, labels

GREY = (200, 200, 200)
MARK_RADIUS = 12


def _global_pixel(lon: float, lat: float, z: int) -> tuple[float, float]:
    n = 256 * 2**z
    return (lon + 180) / 360 * n, (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n


@contextmanager
def tile_server(mark: tuple[float, float]):
    """A raster basemap on another loopback port: grey tiles with a black disc at MARK (lon/lat).
    Under /wgs/ the disc is at MARK itself; under /gcj/ at MARK's GCJ-02 position, as on an Amap
    tile. Yields (base URL, the paths asked for)."""
    asked: list[str] = []
    gcj = tuple(float(v) for v in wgs84_to_gcj02(*mark))

    class Tiles(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            asked.append(self.path)
            try:
                system, z, x, y = self.path.removesuffix(".png").strip("/").split("/")
                z, x, y = int(z), int(x), int(y)
            except ValueError:
                self.send_error(404)
                return
            lon, lat = mark if system == "wgs" else gcj
            gx, gy = _global_pixel(lon, lat, z)
            cx, cy = gx - 256 * x, gy - 256 * y
            img = Image.new("RGB", (256, 256), GREY)
            r = MARK_RADIUS
            ImageDraw.Draw(img).ellipse((cx - r, cy - r, cx + r, cy + r), fill=(0, 0, 0))
            body = io.BytesIO()
            img.save(body, "PNG")
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(body.tell()))
            self.end_headers()
            self.wfile.write(body.getvalue())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", asked
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------------------------
# Without a browser


def test_basemap_settings_are_checked_and_reach_the_page_and_its_csp(city_client):
    assert city_client.get("/web/config.json").json() == {"basemap": None}
    assert "connect-src 'self';" in city_client.get("/").headers["content-security-policy"]

    tianditu = (
        "https://t0.tianditu.gov.cn/vec_w/wmts?tk=K&x={x}&y={y}&l={z} "
        "https://t0.tianditu.gov.cn/cva_w/wmts?tk=K&x={x}&y={y}&l={z}"
    )
    s = Settings(basemap_url=tianditu, basemap_attribution="天地图")
    assert s.basemap_templates == tianditu.split() and not s.basemap_style
    assert basemap_origins(s) == ["https://t0.tianditu.gov.cn"]
    csp = CSP.format(o=" https://t0.tianditu.gov.cn")
    assert "img-src 'self' data: blob: https://t0.tianditu.gov.cn;" in csp
    assert "connect-src 'self' https://t0.tianditu.gov.cn;" in csp

    style = Settings(
        basemap_url="https://tiles.example.cn/style.json", basemap_origins=["https://fonts.example.cn"]
    )
    assert style.basemap_style
    assert basemap_origins(style) == ["https://tiles.example.cn", "https://fonts.example.cn"]

    for bad, says in (
        ({"basemap_url": "ftp://tiles/{z}/{x}/{y}.png"}, r"is not an http\(s\) URL"),
        ({"basemap_url": "https://a/style.json https://b/{z}/{x}/{y}.png"}, "or one style URL"),
        ({"basemap_url": "https://a/style.json", "basemap_coords": "GCJ-02"}, "cannot be shifted"),
        ({"basemap_coords": "BD-09"}, "basemap_coords"),
        ({"basemap_origins": ["javascript:alert(1)"]}, r"is not an http\(s\) URL"),
    ):
        with pytest.raises(ValidationError, match=says):
            Settings(**bad)


def test_vocabulary_names_every_code_in_chinese_and_english(city_client):
    r = city_client.get("/vocabulary")
    assert r.status_code == 200
    doc = r.json()
    assert set(doc) == {*LABEL_CODES, "risk_category"}
    for name, codes in LABEL_CODES.items():
        assert set(doc[name]) == set(codes), name
        for code, words in doc[name].items():
            # Every code has a real Chinese name, not the code read back.
            assert words["zh"] != code and any("\u4e00" <= ch <= "\u9fff" for ch in words["zh"]), (name, code)
            assert words["en"]
    assert doc["colour"]["red"] == {"zh": "红色", "en": "red"}
    assert doc["level"]["red"] == {"zh": "重大风险", "en": "major"}
    assert doc["order_status"]["in_progress"] == {"zh": "处置中", "en": "in progress"}
    assert doc["risk_category"]["hazardous_chemicals"] == {"zh": "危险化学品", "en": "Hazardous chemicals"}
    assert doc == {**labels(), "risk_category": doc["risk_category"]}
    again = city_client.get("/vocabulary", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304


# ---------------------------------------------------------------------------------------------
# In the browser


def _open(browser, base: str, hash_: str = ""):  # noqa: F811 (the fixture's name)
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(base + "/" + hash_)
    page.wait_for_selector("html[data-map=ready]", timeout=20_000)
    return context, page, problems


def _failed_request(page) -> str | None:
    """The message the page's API helper gives for a request that fails (a 404)."""
    return page.evaluate(
        """async () => {
            const { api } = await import('./web/common.js');
            try { await api('risk-sources/987654'); return null; } catch (e) { return e.message; }
        }"""
    )


def _basemap_only(page, lon: float, lat: float) -> None:
    """Hide everything drawn over the basemap, and centre on lon/lat at zoom 15."""
    for overlay in ("risk_sources", "shelters", "hazard_points", "districts"):
        page.uncheck(f"#show-{overlay}")
    page.evaluate(
        """([lon, lat]) => {
            for (const id of ['cells-fill', 'cells-line'])
                gridrisk.map.setLayoutProperty(id, 'visibility', 'none');
            gridrisk.map.jumpTo({center: [lon, lat], zoom: 15});
        }""",
        [lon, lat],
    )
    page.evaluate(IDLE)


def _dark(rgb) -> bool:
    return sum(rgb) < 150


def _grey(rgb) -> bool:
    return all(abs(c - g) < 12 for c, g in zip(rgb, GREY, strict=False))


def test_chinese_page_over_a_gcj02_basemap_that_lines_up(browser, city_db_url):  # noqa: F811
    p = _test_cells(city_db_url)["B"]
    mark = (p["lon"], p["lat"])
    glon, glat = (float(v) for v in wgs84_to_gcj02(*mark))
    with (
        tile_server(mark) as (tiles, asked),
        live_server(
            city_db_url,
            basemap_url=f"{tiles}/gcj/{{z}}/{{x}}/{{y}}.png",
            basemap_coords="GCJ-02",
            basemap_attribution="测试底图 GCJ-02",
        ) as base,
    ):
        context, page, problems = _open(browser, base)
        # Chinese by default: the page's own words and the API's codes (from /vocabulary).
        assert page.get_attribute("html", "lang") == "zh-CN"
        assert page.title() == "gridrisk — 安全风险四色图"
        assert page.inner_text("#h-where") == "我在哪个网格"
        legend = page.inner_text("#legend")
        assert "红色 — 重大风险" in legend and "蓝色 — 低风险" in legend and "网格总数" in legend
        assert "滑坡" in page.inner_text("#hazard-kinds") and "紧急避难场所" in page.inner_text("#panel")
        assert "综合网格" in page.inner_text("#grid-layer")
        assert "测试底图 GCJ-02" in page.inner_text(".maplibregl-ctrl-attrib")
        assert page.inner_text("#lang-switch") == "English"

        # What is on screen: the Amap-style disc drawn at the mark's GCJ-02 position shows where the
        # mark really is (WGS 84, where the overlays are), not 500 m off.
        _basemap_only(page, *mark)
        true_spot, naive_spot = _pixels(page, context, [mark, (glon, glat)])
        assert _dark(true_spot), true_spot
        assert _grey(naive_spot), naive_spot
        # (MapLibre draws 256-pixel raster tiles one zoom level deeper than the map's zoom.)
        assert max(int(a.split("/")[2]) for a in asked) == 16, sorted(set(a.split("/")[2] for a in asked))
        offset_px = page.evaluate(
            """([a, b]) => { const p = gridrisk.map.project(a), q = gridrisk.map.project(b);
                             return Math.hypot(p.x - q.x, p.y - q.y); }""",
            [list(mark), [glon, glat]],
        )
        assert offset_px > 3 * MARK_RADIUS  # the two spots are far apart on screen

        # Where am I, in Chinese.
        page.fill("#where-lon", f"{mark[0]:.7f}")
        page.fill("#where-lat", f"{mark[1]:.7f}")
        page.click("#where-form button[type=submit]")
        page.locator("#where-result h3").first.wait_for(timeout=10_000)
        where = page.inner_text("#where-result")
        assert "所在网格" in where and p["code"] in where and "最近的避难场所" in where

        # A failed request reads in Chinese first, then the service's own (English) words.
        assert _failed_request(page) == "未找到（No risk source with id 987654.）"
        problems[:] = [m for m in problems if "status of 404" not in m]  # Chromium logs the 404

        # The switch: English, kept across a reload, and back.
        page.click("#lang-switch")
        page.wait_for_selector("html[lang=en][data-map=ready]", timeout=20_000)
        assert page.inner_text("#h-where") == "Where am I"
        assert _failed_request(page) == "No risk source with id 987654."
        problems[:] = [m for m in problems if "status of 404" not in m]
        assert "red — major" in page.inner_text("#legend")
        assert "landslide" in page.inner_text("#hazard-kinds")
        page.reload()
        page.wait_for_selector("html[data-map=ready]", timeout=20_000)
        assert page.get_attribute("html", "lang") == "en" and page.inner_text("#lang-switch") == "中文"
        page.click("#lang-switch")
        page.wait_for_selector("html[lang=zh-CN][data-map=ready]", timeout=20_000)
        assert page.inner_text("#h-where") == "我在哪个网格"
        assert not problems, problems
        context.close()


def test_wgs84_basemap_is_drawn_as_it_is(browser, city_db_url):  # noqa: F811
    p = _test_cells(city_db_url)["A"]
    mark = (p["lon"], p["lat"])
    with (
        tile_server(mark) as (tiles, asked),
        live_server(
            city_db_url, basemap_url=f"{tiles}/wgs/{{z}}/{{x}}/{{y}}.png", basemap_attribution="WGS"
        ) as base,
    ):
        context, page, problems = _open(browser, base, "#lang=en")
        _basemap_only(page, *mark)
        (spot,) = _pixels(page, context, [mark])
        assert _dark(spot), spot
        # Beside the disc: the grey of the tile, no warp involved.
        (beside,) = _pixels(page, context, [(mark[0] + 0.002, mark[1])])
        assert _grey(beside), beside
        assert max(int(a.split("/")[2]) for a in asked) == 16
        assert not problems, problems
        context.close()
