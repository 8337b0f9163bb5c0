"""The single-page web map: `GET /` and its static assets under /web/, served from the package itself.

Everything the page needs (MapLibre GL JS included) ships in src/gridrisk/web/, so the map works on a
closed intranet. index.html names each asset with `?v=<content hash>`: a request carrying the current
hash may be cached for a year, anything else (and index.html itself) is revalidated by ETag.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from gridrisk.api.etags import not_modified
from gridrisk.errors import NotFound
from gridrisk.settings import Settings

router = APIRouter(tags=["web map"])

WEB_DIR = Path(__file__).resolve().parents[2] / "web"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    "": "text/plain; charset=utf-8",  # VERSION
}
IMMUTABLE = "public, max-age=31536000, immutable"
# The page talks to its own origin and, when one is configured, to the basemap's. MapLibre runs
# its worker from a blob: URL and draws images from data:/blob: URLs; nothing else may load, so a
# stray external request fails loudly.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:{o}; "
    "worker-src blob:; child-src blob:; connect-src 'self'{o}; object-src 'none'; base-uri 'self'; "
    "frame-ancestors 'self'"
)
SECURITY = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
_PLACEHOLDER = re.compile(r"\{\{v:([A-Za-z0-9_./-]+)\}\}")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    version: str  # the first 16 hex digits of the content's SHA-256

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def _asset(body: bytes, content_type: str) -> Asset:
    return Asset(body, content_type, hashlib.sha256(body).hexdigest()[:16])


@cache
def assets() -> dict[str, Asset]:
    """Every servable file under web/ by its path, read once; the set is fixed, so no path escapes it."""
    found: dict[str, Asset] = {}
    for path in sorted(WEB_DIR.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if path.is_file() and content_type and path.name != "index.html":
            found[path.relative_to(WEB_DIR).as_posix()] = _asset(path.read_bytes(), content_type)
    return found


@cache
def index_page() -> Asset:
    """index.html with each `{{v:path}}` replaced by that asset's content hash."""
    known = assets()

    def version(match: re.Match) -> str:
        name = match.group(1)
        if name not in known:
            raise RuntimeError(f"index.html names a missing asset: {name}")
        return known[name].version

    text = _PLACEHOLDER.sub(version, (WEB_DIR / "index.html").read_text(encoding="utf-8"))
    return _asset(text.encode(), CONTENT_TYPES[".html"])


def _send(request: Request, asset: Asset, cache_control: str, extra: dict | None = None) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": cache_control, **SECURITY, **(extra or {})}
    if not_modified(request.headers.get("if-none-match"), asset.etag):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def basemap_origins(settings: Settings) -> list[str]:
    """The origins the basemap loads from (its URLs' and any listed), for the page's CSP."""
    origins = []
    for url in [*settings.basemap_templates, *settings.basemap_origins]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    return origins


def page_config(settings: Settings) -> dict:
    """What the page needs to know of this deployment: its basemap (none: an empty background)."""
    if not settings.basemap_templates:
        return {"basemap": None}
    return {
        "basemap": {
            "kind": "style" if settings.basemap_style else "raster",
            "urls": settings.basemap_templates,
            "attribution": settings.basemap_attribution,
            "coords": settings.basemap_coords,
            "tile_size": settings.basemap_tile_size,
            "max_zoom": settings.basemap_max_zoom,
        }
    }


@router.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
async def map_page(request: Request) -> Response:
    """The web map (always revalidated, so a new release is picked up on the next load)."""
    origins = "".join(f" {o}" for o in basemap_origins(request.app.state.settings))
    return _send(request, index_page(), "no-cache", {"Content-Security-Policy": CSP.format(o=origins)})


def swagger_page(request: Request, openapi_url: str, title: str) -> HTMLResponse:
    """Swagger UI for OPENAPI_URL from the vendored copy (web/vendor/swagger-ui), never a CDN: the
    API's documentation works on a closed intranet like the map does."""
    root = str(request.base_url).rstrip("/")

    def url(name: str) -> str:
        return f"{root}/web/vendor/swagger-ui/{name}?v={assets()[f'vendor/swagger-ui/{name}'].version}"

    return get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=url("swagger-ui-bundle.js"),
        swagger_css_url=url("swagger-ui.css"),
        swagger_favicon_url="data:,",
    )


@router.get("/docs", include_in_schema=False)
async def docs(request: Request) -> HTMLResponse:
    """The API's interactive documentation (Swagger UI, served from this service)."""
    return swagger_page(request, str(request.base_url).rstrip("/") + "/openapi.json", "gridrisk – API")


@router.api_route("/web/config.json", methods=["GET", "HEAD"], include_in_schema=False)
async def web_config(request: Request) -> Response:
    """The page's deployment settings (the basemap), revalidated like the page."""
    body = orjson.dumps(page_config(request.app.state.settings))
    return _send(request, _asset(body, "application/json"), "no-cache")


@router.api_route("/web/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def web_asset(path: str, request: Request) -> Response:
    """One of the page's files; cached for a year when asked for by its current hash (`?v=`)."""
    asset = assets().get(path)
    if asset is None:
        raise NotFound(f"No web asset '{path}'.")
    versioned = request.query_params.get("v") == asset.version
    return _send(request, asset, IMMUTABLE if versioned else "no-cache")
