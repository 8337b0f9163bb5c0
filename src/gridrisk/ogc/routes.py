"""OGC API – Features (Part 1: Core, GeoJSON, HTML, OpenAPI 3.0) under /ogc, for GIS clients.

GDAL's OAPIF driver, OWSLib and QGIS read every collection through it. The items path is the hot
one: a single statement builds the page's GeoJSON in PostgreSQL (behind the GiST indexes) and
counts the matches only when the page itself does not tell the total; Python adds the envelope
and links, whatever the number of features. Query parameters are checked by hand so that every
bad one is a 400 (as OGC requires, not FastAPI's 422), and an unknown one is refused too: a
misspelt filter (`?colur=red`) would otherwise answer the whole layer as if it matched.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from html import escape
from typing import Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.datastructures import QueryParams
from starlette.responses import HTMLResponse

from gridrisk.api.deps import PoolDep, Reader
from gridrisk.api.geojson import GEOJSON, raw_json
from gridrisk.api.responses import OrjsonResponse
from gridrisk.errors import BadRequest, NotFound
from gridrisk.ogc.collections import (
    COLLECTIONS,
    CRS84,
    Collection,
    Shape,
    TimeFilter,
    extents_sql,
    feature_schema,
    item_sql,
    items_sql,
    params_for,
    parse_datetime,
    queryables_schema,
)
from gridrisk.ogc.models import (
    CONFORMANCE,
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    OPENAPI_30,
    SCHEMA_JSON,
    TRS,
    CollectionInfo,
    Collections,
    Conformance,
    Feature,
    FeatureCollection,
    LandingPage,
    openapi_document,
)

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"])

JSON = "application/json"
HTML = "text/html"
CONTENT_CRS = {"Content-Crs": f"<{CRS84}>"}
CRS_ALIASES = {CRS84, CRS84.replace("http://", "https://"), "OGC:CRS84", "CRS84"}
_BASIC = frozenset({"f"})
_ITEM = frozenset({"f", "crs"})
_ITEMS = frozenset({"f", "bbox", "bbox-crs", "limit", "offset", "datetime", "crs"})
_INT = re.compile(r"\d{1,12}")

CollectionId = Path(description="A collection id: " + ", ".join(COLLECTIONS))


def _doc_params(*names: str) -> dict[str, Any]:
    """Query parameters for the app's own OpenAPI (they are parsed by hand, so FastAPI does not see them)."""
    specs = {
        "f": {"type": "string", "enum": ["json", "html"]},
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        "bbox": {"type": "string", "description": "minLon,minLat,maxLon,maxLat (CRS84)"},
        "datetime": {"type": "string", "description": "RFC 3339 instant or interval (start/end, ../end)"},
        "bbox-crs": {"type": "string", "enum": [CRS84]},
        "crs": {"type": "string", "enum": [CRS84]},
    }
    return {"parameters": [{"name": n, "in": "query", "required": False, "schema": specs[n]} for n in names]}


def _doc(model: type | None, *types: str) -> dict:
    content: dict[str, Any] = {t: {} for t in types}
    out: dict[str, Any] = {"content": content, "description": "OK"}
    if model is not None:
        out["model"] = model
    return {200: out}


# ---------------------------------------------------------------------------------------------
# Negotiation, parameters and links


def _wants_html(request: Request) -> bool:
    """f=html|json decides; else the Accept header (HTML only when preferred over JSON)."""
    f = request.query_params.get("f")
    if f is not None:
        if f == "html":
            return True
        if f == "json":
            return False
        raise BadRequest(
            f"Unknown format f={f!r}; use f=json or f=html.",
            errors=[{"field": "f", "message": "one of json, html"}],
        )
    accept = request.headers.get("accept")
    if not accept or "html" not in accept:
        return False
    q_html = q_json = 0.0
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            q_html = max(q_html, q)
        elif "json" in media:
            q_json = max(q_json, q)
    return q_html > q_json


def _check_params(params: QueryParams, allowed: frozenset[str] | set[str]) -> None:
    """400 for a parameter this resource does not know, or one given twice."""
    unknown = sorted(k for k in params.keys() if k not in allowed)
    if unknown:
        raise BadRequest(
            f"Unknown query parameter(s): {', '.join(unknown)}. This resource accepts: "
            f"{', '.join(sorted(allowed))}.",
            errors=[{"field": k, "message": "unknown parameter"} for k in unknown],
        )
    if len(params.multi_items()) != len(params):
        twice = sorted({k for k, _ in params.multi_items() if len(params.getlist(k)) > 1})
        raise BadRequest(
            f"Query parameter(s) given more than once: {', '.join(twice)}.",
            errors=[{"field": k, "message": "given more than once"} for k in twice],
        )


def _check_crs(params: QueryParams) -> None:
    for name in ("crs", "bbox-crs"):
        value = params.get(name)
        if value is not None and value not in CRS_ALIASES:
            raise BadRequest(
                f"{name}={value!r} is not served; coordinates are CRS84 ({CRS84}).",
                errors=[{"field": name, "message": f"only {CRS84}"}],
            )


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/ogc"


def _with(request: Request, **params: Any) -> str:
    return str(request.url.include_query_params(**params))


def _self_links(request: Request, html: bool, json_type: str = JSON) -> list[dict]:
    """self and alternate: this resource in the format served and in the other one."""
    if html:
        return [
            {"rel": "self", "type": HTML, "title": "This document", "href": str(request.url)},
            {"rel": "alternate", "type": json_type, "title": "As JSON", "href": _with(request, f="json")},
        ]
    return [
        {"rel": "self", "type": json_type, "title": "This document", "href": str(request.url)},
        {"rel": "alternate", "type": HTML, "title": "As HTML", "href": _with(request, f="html")},
    ]


def _collection(collection_id: str) -> Collection:
    c = COLLECTIONS.get(collection_id)
    if c is None:
        raise NotFound(f"No collection '{collection_id}'. Collections: {', '.join(COLLECTIONS)}.")
    return c


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Landing page, conformance, API


@router.get(
    "",
    summary="OGC API – Features landing page",
    responses=_doc(LandingPage, JSON, HTML),
    openapi_extra=_doc_params("f"),
)
async def landing(request: Request, _: Reader):
    _check_params(request.query_params, _BASIC)
    html = _wants_html(request)
    base = _base(request)
    links = [
        *_self_links(request, html),
        {"rel": "service-desc", "type": OPENAPI_30, "title": "The API (OpenAPI 3.0)", "href": f"{base}/api"},
        {"rel": "service-doc", "type": HTML, "title": "The API, browsable", "href": f"{base}/api?f=html"},
        {"rel": "conformance", "type": JSON, "title": "Conformance classes", "href": f"{base}/conformance"},
        {"rel": "data", "type": JSON, "title": "The collections", "href": f"{base}/collections"},
    ]
    body = {
        "title": "gridrisk – OGC API – Features",
        "description": "The city's three grids with their four-colour risk map, its districts, risk "
        "sources, shelters and hazard points, for GIS clients (QGIS, GDAL/OGR, OWSLib). "
        "Coordinates are WGS 84 longitude/latitude (CRS84).",
        "links": links,
    }
    if html:
        items = "".join(
            f'<li><a href="{escape(link["href"])}">{escape(link["title"])}</a> ({escape(link["type"])})</li>'
            for link in links[2:]
        )
        return _page(body["title"], f"<p>{escape(body['description'])}</p><ul>{items}</ul>", links, [])
    return OrjsonResponse(body)


@router.get(
    "/conformance",
    summary="The OGC conformance classes served",
    responses=_doc(Conformance, JSON, HTML),
    openapi_extra=_doc_params("f"),
)
async def conformance(request: Request, _: Reader):
    _check_params(request.query_params, _BASIC)
    if _wants_html(request):
        items = "".join(f"<li><code>{escape(c)}</code></li>" for c in CONFORMANCE)
        links = _self_links(request, True)
        return _page("Conformance", f"<ul>{items}</ul>", links, [("Conformance", "")])
    return OrjsonResponse({"conformsTo": CONFORMANCE})


@router.get(
    "/api",
    summary="The OpenAPI 3.0 description of /ogc (f=html: browsable)",
    responses=_doc(None, OPENAPI_30, HTML),
    openapi_extra=_doc_params("f"),
)
async def api(request: Request, _: Reader):
    _check_params(request.query_params, _BASIC)
    base = _base(request)
    if _wants_html(request):
        return get_swagger_ui_html(openapi_url=f"{base}/api?f=json", title="gridrisk – OGC API – Features")
    return OrjsonResponse(openapi_document(base), media_type=OPENAPI_30)


# ---------------------------------------------------------------------------------------------
# Collections


def _collection_body(c: Collection, extent: dict | None, base: str) -> dict:
    url = f"{base}/collections/{c.id}"
    body: dict[str, Any] = {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "keywords": list(c.keywords),
        "itemType": "feature",
        "crs": [CRS84],
    }
    if extent is not None and extent["minx"] is not None:
        body["extent"] = {
            "spatial": {
                "bbox": [[extent["minx"], extent["miny"], extent["maxx"], extent["maxy"]]],
                "crs": CRS84,
            },
            "temporal": {"interval": [[_iso(extent["tmin"]), _iso(extent["tmax"])]], "trs": TRS},
        }
    body["links"] = [
        {"rel": "self", "type": JSON, "title": c.title, "href": url},
        {"rel": "alternate", "type": HTML, "title": f"{c.title} (HTML)", "href": f"{url}?f=html"},
        {"rel": "items", "type": GEOJSON, "title": "The features (GeoJSON)", "href": f"{url}/items"},
        {"rel": "items", "type": HTML, "title": "The features (HTML)", "href": f"{url}/items?f=html"},
        {"rel": "describedby", "type": SCHEMA_JSON, "title": "Feature schema", "href": f"{url}/schema"},
        {"rel": "queryables", "type": SCHEMA_JSON, "title": "Queryables", "href": f"{url}/queryables"},
        {"rel": "collection", "type": JSON, "title": "All collections", "href": f"{base}/collections"},
    ]
    return body


async def _extents(pool, ids: tuple[str, ...]) -> dict[str, dict]:
    async with pool.connection() as conn:
        cur = await conn.execute(extents_sql(ids))
        return {row["id"]: row for row in await cur.fetchall()}


@router.get(
    "/collections",
    summary="The feature collections, with the spatial and temporal extent of their data",
    responses=_doc(Collections, JSON, HTML),
    openapi_extra=_doc_params("f"),
)
async def collections(request: Request, pool: PoolDep, _: Reader):
    _check_params(request.query_params, _BASIC)
    html = _wants_html(request)
    base = _base(request)
    extents = await _extents(pool, tuple(COLLECTIONS))
    body = {
        "links": _self_links(request, html),
        "collections": [_collection_body(c, extents.get(c.id), base) for c in COLLECTIONS.values()],
    }
    if not html:
        return OrjsonResponse(body)
    rows = "".join(
        f'<tr><td><a href="{escape(base)}/collections/{c["id"]}?f=html">{escape(c["id"])}</a></td>'
        f"<td>{escape(c['title'])}</td><td>{escape(c['description'])}</td>"
        f"<td>{_bbox_text(c)}</td>"
        f'<td><a href="{escape(base)}/collections/{c["id"]}/items?f=html">items</a></td></tr>'
        for c in body["collections"]
    )
    table = (
        f"<table><tr><th>id</th><th>title</th><th>description</th><th>extent</th><th></th></tr>{rows}</table>"
    )
    return _page("Collections", table, body["links"], [("Collections", "")])


@router.get(
    "/collections/{collection_id}",
    summary="One collection: description, extent and links",
    responses=_doc(CollectionInfo, JSON, HTML),
    openapi_extra=_doc_params("f"),
)
async def collection(request: Request, pool: PoolDep, _: Reader, collection_id: str = CollectionId):
    c = _collection(collection_id)
    _check_params(request.query_params, _BASIC)
    html = _wants_html(request)
    base = _base(request)
    extents = await _extents(pool, (c.id,))
    body = _collection_body(c, extents.get(c.id), base)
    if not html:
        return OrjsonResponse(body)
    queryables = ", ".join(f"<code>{escape(p.name)}</code>" for p in c.queryables)
    content = (
        f"<p>{escape(c.description)}</p><p>Extent: {_bbox_text(body)}</p>"
        f"<p>Temporal property (<code>datetime</code>): <code>{escape(c.temporal)}</code>. "
        f"Queryables (<code>?name=value</code>): {queryables}.</p>"
        f'<p><a href="{escape(base)}/collections/{c.id}/items?f=html">Browse the features</a></p>'
        + _properties_table(c.properties)
    )
    others = [link for link in body["links"] if link["rel"] not in ("self", "alternate")]
    links = [*_self_links(request, True), *others]
    return _page(c.title, content, links, [("Collections", f"{base}/collections"), (c.id, "")])


@router.get(
    "/collections/{collection_id}/queryables",
    summary="The properties a collection's items filter on with ?name=value (JSON Schema)",
    responses=_doc(None, SCHEMA_JSON, HTML),
    openapi_extra=_doc_params("f"),
)
async def queryables(request: Request, _: Reader, collection_id: str = CollectionId):
    c = _collection(collection_id)
    _check_params(request.query_params, _BASIC)
    url = f"{_base(request)}/collections/{c.id}/queryables"
    if _wants_html(request):
        crumbs = [("Collections", f"{_base(request)}/collections"), (c.id, url.rsplit("/", 1)[0] + "?f=html")]
        links = _self_links(request, True, SCHEMA_JSON)
        return _page(
            f"{c.title}: queryables", _properties_table(c.queryables), links, [*crumbs, ("queryables", "")]
        )
    return OrjsonResponse(queryables_schema(c, url), media_type=SCHEMA_JSON)


@router.get(
    "/collections/{collection_id}/schema",
    summary="JSON Schema of a collection's features (the `describedby` link)",
    responses=_doc(None, SCHEMA_JSON, HTML),
    openapi_extra=_doc_params("f"),
)
async def schema(request: Request, _: Reader, collection_id: str = CollectionId):
    c = _collection(collection_id)
    _check_params(request.query_params, _BASIC)
    url = f"{_base(request)}/collections/{c.id}/schema"
    if _wants_html(request):
        crumbs = [("Collections", f"{_base(request)}/collections"), (c.id, url.rsplit("/", 1)[0] + "?f=html")]
        links = _self_links(request, True, SCHEMA_JSON)
        return _page(f"{c.title}: schema", _properties_table(c.properties), links, [*crumbs, ("schema", "")])
    return OrjsonResponse(feature_schema(c, url), media_type=SCHEMA_JSON)


# ---------------------------------------------------------------------------------------------
# Items


def _parse_int(params: QueryParams, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _INT.fullmatch(raw.strip()) or not low <= int(raw) <= high:
        raise BadRequest(
            f"{name}={raw!r} must be an integer from {low} to {high:,}.",
            errors=[{"field": name, "message": f"an integer from {low} to {high}"}],
        )
    return int(raw)


def _parse_bbox(raw: str) -> tuple[tuple[float, float, float, float], bool]:
    """The bbox parameter (4 numbers, or 6 with heights ignored) and whether it crosses 180°."""
    try:
        numbers = [float(p) for p in raw.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in (4, 6) or not all(math.isfinite(n) for n in numbers):
        raise BadRequest(
            f"bbox={raw!r} must be minLon,minLat,maxLon,maxLat (four numbers, CRS84).",
            errors=[{"field": "bbox", "message": "four comma-separated numbers"}],
        )
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise BadRequest(
            f"bbox={raw!r} is outside longitude -180..180 / latitude -90..90.",
            errors=[{"field": "bbox", "message": "coordinates out of range"}],
        )
    if miny > maxy:
        raise BadRequest(
            f"bbox={raw!r}: the lower latitude ({miny}) is above the upper one ({maxy}).",
            errors=[{"field": "bbox", "message": "minLat greater than maxLat"}],
        )
    # minLon > maxLon is legal in OGC: the box crosses the antimeridian.
    return (minx, miny, maxx, maxy), minx > maxx


def _parse_filter(c: Collection, name: str, raw: str) -> Any:
    p = c.prop(name)
    value: Any = raw
    try:
        if p.type == "integer":
            if not re.fullmatch(r"-?\d{1,18}", raw.strip()):
                raise ValueError
            value = int(raw)
        elif p.type == "number":
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
        elif p.type == "boolean":
            value = {"true": True, "false": False}[raw.strip().lower()]
    except (ValueError, KeyError):
        raise BadRequest(
            f"{name}={raw!r} is not a valid {p.type}.",
            errors=[{"field": name, "message": f"expected a {p.type}"}],
        ) from None
    if p.enum and value not in p.enum:
        raise BadRequest(
            f"{name}={raw!r} is not one of {', '.join(p.enum)}.",
            errors=[{"field": name, "message": f"one of {', '.join(p.enum)}"}],
        )
    return value


def _items_query(c: Collection, params: QueryParams) -> tuple[str, dict[str, Any], int, int]:
    """Check the items parameters: the statement to run, its values, the limit and the offset."""
    names = {p.name for p in c.queryables}
    _check_params(params, _ITEMS | names)
    _check_crs(params)
    limit = _parse_int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _parse_int(params, "offset", 0, 0, MAX_OFFSET)
    bbox, crossing = None, False
    if (raw := params.get("bbox")) is not None:
        bbox, crossing = _parse_bbox(raw)
    time: TimeFilter | None = None
    if (raw := params.get("datetime")) is not None:
        try:
            time = parse_datetime(raw)
        except ValueError as exc:
            raise BadRequest(
                f"datetime: {exc}.", errors=[{"field": "datetime", "message": str(exc)}]
            ) from None
    filters = {name: _parse_filter(c, name, params[name]) for name in sorted(names & params.keys())}
    shape = Shape(
        filters=tuple(filters),
        bbox="" if bbox is None else ("antimeridian" if crossing else "box"),
        start=time is not None and time.start is not None,
        end="" if time is None or time.end is None else ("<=" if time.end_inclusive else "<"),
    )
    values = params_for(shape, limit=limit, offset=offset, bbox=bbox, filters=filters, time=time)
    return items_sql(c.id, shape), values, limit, offset


def _items_links(
    request: Request, c: Collection, html: bool, *, limit: int, offset: int, returned: int, matched: int
) -> list[dict]:
    """self, alternate, next (only when more remain), prev and collection."""
    page_type = HTML if html else GEOJSON
    links = _self_links(request, html, GEOJSON)
    if offset + returned < matched:
        links.append(
            {
                "rel": "next",
                "type": page_type,
                "title": "Next page",
                "href": _with(request, offset=offset + limit, limit=limit),
            }
        )
    if offset > 0:
        prev = max(0, offset - limit)
        links.append(
            {
                "rel": "prev",
                "type": page_type,
                "title": "Previous page",
                "href": _with(request, offset=prev, limit=limit),
            }
        )
    links.append(
        {"rel": "collection", "type": JSON, "title": c.title, "href": f"{_base(request)}/collections/{c.id}"}
    )
    return links


@router.get(
    "/collections/{collection_id}/items",
    summary="A collection's features as GeoJSON, paged by feature id (bbox, datetime, ?property=value)",
    description="Filters: `bbox` (CRS84, intersecting), `datetime` (on the collection's temporal property) "
    "and equality on the queryables (`/ogc/collections/{id}/queryables`, e.g. `?colour=red`). Items are "
    "ordered by feature id; follow `next` to page through everything. Unknown parameters get 400.",
    responses=_doc(FeatureCollection, GEOJSON, HTML),
    openapi_extra=_doc_params("f", "bbox", "bbox-crs", "limit", "offset", "datetime", "crs"),
)
async def items(request: Request, pool: PoolDep, _: Reader, collection_id: str = CollectionId):
    c = _collection(collection_id)
    statement, values, limit, offset = _items_query(c, request.query_params)
    html = _wants_html(request)
    async with pool.connection() as conn:
        # Binary results: the features arrive as bytes, copied once into the response.
        cur = await conn.execute(statement, values, binary=True)
        row = await cur.fetchone()
    matched, returned = row["matched"], row["returned"]
    links = _items_links(request, c, html, limit=limit, offset=offset, returned=returned, matched=matched)
    if html:
        return _items_page(request, c, orjson.loads(b"[" + row["features"] + b"]"), links, matched, offset)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    head = b'{"type":"FeatureCollection","numberMatched":%d,"numberReturned":%d,"timeStamp":"%s","links":' % (
        matched,
        returned,
        stamp.encode(),
    )
    body = head + orjson.dumps(links) + b',"features":[' + row["features"] + b"]}"
    return raw_json(body, headers=CONTENT_CRS)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature of a collection (GeoJSON)",
    responses=_doc(Feature, GEOJSON, HTML),
    openapi_extra=_doc_params("f", "crs"),
)
async def item(
    request: Request,
    pool: PoolDep,
    _: Reader,
    collection_id: str = CollectionId,
    feature_id: str = Path(description="A cell or district code, or a registry record's integer id"),
):
    c = _collection(collection_id)
    _check_params(request.query_params, _ITEM)
    _check_crs(request.query_params)
    html = _wants_html(request)
    missing = NotFound(f"No feature '{feature_id}' in collection '{c.id}'.")
    key: str | int = feature_id
    if c.id_type == "integer":
        if not re.fullmatch(r"\d{1,18}", feature_id):
            raise missing
        key = int(feature_id)
    async with pool.connection() as conn:
        cur = await conn.execute(item_sql(c.id), {"id": key})
        row = await cur.fetchone()
    if row is None:
        raise missing
    base = _base(request)
    links = [
        *_self_links(request, html, GEOJSON),
        {"rel": "collection", "type": JSON, "title": c.title, "href": f"{base}/collections/{c.id}"},
    ]
    if html:
        return _item_page(request, c, orjson.loads(row["feature"]), links)
    # The feature text ends with its closing brace: the links go in just before it.
    body = row["feature"].encode()[:-1] + b',"links":' + orjson.dumps(links) + b"}"
    return raw_json(body, headers=CONTENT_CRS)


# ---------------------------------------------------------------------------------------------
# HTML views: plain pages for a person browsing the API

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem auto;max-width:75rem;padding:0 1rem;color:#222}"
    "table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ccc;padding:.2rem .45rem;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}nav{margin-bottom:1rem}code{font-size:.9em}"
)


def _page(title: str, content: str, links: list[dict], crumbs: list[tuple[str, str]]) -> HTMLResponse:
    """One HTML page: breadcrumbs from the landing page, the content, the JSON alternate in the head."""
    alternates = "".join(
        f'<link rel="alternate" type="{escape(link["type"])}" href="{escape(link["href"])}">'
        for link in links
        if link["rel"] == "alternate"
    )
    trail = ['<a href="/ogc?f=html">OGC API</a>']
    for label, href in crumbs:
        trail.append(f'<a href="{escape(href)}">{escape(label)}</a>' if href else escape(label))
    json_link = next((link for link in links if link["rel"] == "alternate"), None)
    json_a = f' · <a href="{escape(json_link["href"])}">JSON</a>' if json_link else ""
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">{alternates}'
        f"<style>{_STYLE}</style></head><body><nav>{' › '.join(trail)}{json_a}</nav>"
        f"<h1>{escape(title)}</h1>{content}</body></html>"
    )


def _bbox_text(collection_body: dict) -> str:
    extent = collection_body.get("extent")
    if not extent:
        return "(no data)"
    box = ", ".join(f"{v:.5f}" for v in extent["spatial"]["bbox"][0])
    start, end = extent["temporal"]["interval"][0]
    return f"{escape(box)}<br><small>{escape(str(start))} – {escape(str(end))}</small>"


def _properties_table(props) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(p.name)}</code></td><td>{escape(p.type)}"
        f"{' (' + escape(p.format) + ')' if p.format else ''}</td><td>{escape(p.description)}"
        f"{'<br>one of: ' + escape(', '.join(p.enum)) if p.enum else ''}</td></tr>"
        for p in props
    )
    return f"<table><tr><th>property</th><th>type</th><th>meaning</th></tr>{rows}</table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return escape(orjson.dumps(value).decode())
    return escape(str(value))


def _items_page(
    request: Request, c: Collection, features: list[dict], links: list[dict], matched: int, offset: int
) -> HTMLResponse:
    base = _base(request)
    names = [p.name for p in c.properties]
    head = "".join(f"<th>{escape(n)}</th>" for n in ["id", "geometry", *names])
    rows = "".join(
        f'<tr><td><a href="{escape(base)}/collections/{c.id}/items/{escape(str(f["id"]))}?f=html">'
        f"{escape(str(f['id']))}</a></td><td>{escape(f['geometry']['type'])}</td>"
        + "".join(f"<td>{_cell(f['properties'].get(n))}</td>" for n in names)
        + "</tr>"
        for f in features
    )
    pager = " ".join(
        f'<a href="{escape(link["href"])}">{escape(link["title"])}</a>'
        for link in links
        if link["rel"] in ("prev", "next")
    )
    shown = f"{offset + 1}–{offset + len(features)}" if features else "none"
    content = (
        f"<p>{matched:,} matching feature(s); showing {shown}. {pager}</p>"
        f"<table><tr>{head}</tr>{rows}</table><p>{pager}</p>"
    )
    crumbs = [("Collections", f"{base}/collections?f=html"), (c.id, f"{base}/collections/{c.id}?f=html")]
    return _page(f"{c.title}: features", content, links, [*crumbs, ("items", "")])


def _item_page(request: Request, c: Collection, feature: dict, links: list[dict]) -> HTMLResponse:
    base = _base(request)
    rows = "".join(
        f"<tr><th>{escape(k)}</th><td>{_cell(v)}</td></tr>" for k, v in feature["properties"].items()
    )
    geometry = escape(orjson.dumps(feature["geometry"]).decode())
    content = (
        f"<table><tr><th>id</th><td>{escape(str(feature['id']))}</td></tr>"
        f"<tr><th>geometry</th><td>{escape(feature['geometry']['type'])}</td></tr>{rows}</table>"
        f"<details><summary>Geometry (GeoJSON)</summary><pre>{geometry}</pre></details>"
    )
    crumbs = [
        ("Collections", f"{base}/collections?f=html"),
        (c.id, f"{base}/collections/{c.id}?f=html"),
        ("items", f"{base}/collections/{c.id}/items?f=html"),
    ]
    return _page(f"{c.title}: {feature['id']}", content, links, [*crumbs, (str(feature["id"]), "")])
