"""What a request to /ogc asks: its format, its query parameters, and for items the statement to run.

Query parameters are checked by hand so that every bad one is a 400 (as OGC requires, not
FastAPI's 422), and an unknown one is refused too: a misspelt filter (`?colur=red`) would otherwise
answer the whole layer as if it matched. `PARAMETERS` describes each parameter once, for the app's
OpenAPI (through `documented()`) and for the OpenAPI 3.0 document of /ogc (ogc/openapi.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any, NamedTuple

from starlette.datastructures import QueryParams
from starlette.requests import Request

from gridrisk.api.params import read_bbox
from gridrisk.errors import BadRequest, NotFound
from gridrisk.ogc.collections import (
    COLLECTIONS,
    Collection,
    Shape,
    items_sql,
    params_for,
)
from gridrisk.ogc.cql2_filter import compile_filter, parse
from gridrisk.ogc.crs import (
    CRS84,
    GCJ02,
    GK_ZONES,
    STORAGE,
    Crs,
    bbox_in_storage_order,
    epsg_uri,
    parse_crs,
)
from gridrisk.ogc.models import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET
from gridrisk.ogc.times import TimeFilter, parse_datetime

_INT = re.compile(r"\d{1,12}")

# The query parameters each kind of resource takes (beyond an items page's queryables).
BASIC = ("f",)
ITEM = ("f", "crs")
ITEMS = ("f", "bbox", "bbox-crs", "limit", "offset", "datetime", "crs", "filter", "filter-lang", "filter-crs")

_CRS_NAMES = [CRS84, epsg_uri(4326), epsg_uri(4490), epsg_uri(3857), *(epsg_uri(z) for z in GK_ZONES)]
_CRS = {"type": "string", "enum": _CRS_NAMES, "default": CRS84}
PARAMETERS: dict[str, dict[str, Any]] = {
    "f": {
        "description": "Format of the answer; without it, the Accept header decides (JSON by default).",
        "schema": {"type": "string", "enum": ["json", "html"]},
    },
    "limit": {
        "description": f"How many items a page holds (1–{MAX_LIMIT:,}); follow the `next` link for more.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    "offset": {
        "description": "How many matching items to skip (items are ordered by feature id).",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    },
    "bbox": {
        "description": "minLon,minLat,maxLon,maxLat (CRS84, unless bbox-crs says otherwise): items whose "
        "geometry intersects the box. "
        "Six numbers (with heights) are accepted; the heights are ignored.",
        "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
    },
    "bbox-crs": {
        "description": "The CRS of bbox (default CRS84), its numbers in that CRS's axis order: "
        "EPSG:4326 and EPSG:4490 latitude first, the CGCS2000 Gauss-Kruger zones northing first.",
        "schema": _CRS,
    },
    "crs": {
        "description": "The CRS of the answer's coordinates (default CRS84), in its axis order (see "
        "bbox-crs); the response's Content-Crs header names it. Also `GCJ-02` (non-standard: the offset "
        f"lon/lat of Amap and Tencent basemaps, {GCJ02}).",
        "schema": {"type": "string", "enum": [*_CRS_NAMES, GCJ02], "default": CRS84},
    },
    "filter": {
        "description": "A CQL2 filter (OGC API – Features Part 3) over the collection's queryables "
        "(`/queryables`) and `geometry`: comparisons, LIKE, BETWEEN, IN, IS NULL, AND/OR/NOT, CASEI(), "
        "the S_ spatial functions, TIMESTAMP()/DATE() on the temporal property. Unknown properties, "
        "functions and ill-typed literals are a 400 naming them.",
        "schema": {"type": "string"},
    },
    "filter-lang": {
        "description": "cql2-text (default) or cql2-json.",
        "schema": {"type": "string", "enum": ["cql2-text", "cql2-json"], "default": "cql2-text"},
    },
    "filter-crs": {
        "description": "The CRS of the filter's geometry literals (default CRS84), in its axis order.",
        "schema": _CRS,
    },
    "datetime": {
        "description": "An RFC 3339 instant or interval (`start/end`, `../end`, `start/..`) on the "
        "collection's temporal property; an instant without fractional seconds covers its whole second "
        "(a date, its whole day), interval ends are inclusive.",
        "schema": {"type": "string"},
    },
}


def query_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI query parameter object (the same in 3.0 and 3.1)."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        "style": "form",
        "explode": False,
    }


def documented(names: Iterable[str]) -> dict[str, Any]:
    """`openapi_extra` for a route: the parameters it parses by hand, which FastAPI cannot see."""
    return {"parameters": [query_parameter(n, **PARAMETERS[n]) for n in names]}


def get_collection(collection_id: str) -> Collection:
    """The collection of that id, or 404."""
    c = COLLECTIONS.get(collection_id)
    if c is None:
        raise NotFound(f"No collection '{collection_id}'. Collections: {', '.join(COLLECTIONS)}.")
    return c


def wants_html(request: Request) -> bool:
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


def check_params(params: QueryParams, allowed: Iterable[str]) -> None:
    """400 for a parameter this resource does not know, or one given twice."""
    allowed = set(allowed)
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


def feature_key(c: Collection, feature_id: str) -> str | int | None:
    """The feature id as the collection's id column holds it; None when it cannot be one."""
    if c.id_type != "integer":
        return feature_id
    return int(feature_id) if re.fullmatch(r"\d{1,18}", feature_id) else None


# ---------------------------------------------------------------------------------------------
# An items page


class ItemsQuery(NamedTuple):
    """The statement of an items page, its bound values, and the page's limit and offset."""

    statement: str
    values: dict[str, Any]
    limit: int
    offset: int
    crs: Crs = STORAGE  # of the answer (GCJ-02 is written as CRS84, then shifted)


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


def _read_numbers(raw: str) -> tuple[float, float, float, float]:
    """A bbox in another CRS: four finite numbers (six: heights ignored), each minimum below its maximum."""
    try:
        numbers = [float(p) for p in raw.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if (
        len(numbers) != 4
        or not all(math.isfinite(n) for n in numbers)
        or numbers[0] > numbers[2]
        or numbers[1] > numbers[3]
    ):
        raise BadRequest(
            f"bbox={raw!r} must be four numbers in bbox-crs's axis order, each minimum before its maximum.",
            errors=[{"field": "bbox", "message": "four numbers: min, min, max, max"}],
        )
    return numbers[0], numbers[1], numbers[2], numbers[3]


def items_query(c: Collection, params: QueryParams, *, html: bool = False) -> ItemsQuery:
    """Check the parameters of an items request: what to run for it (HTML pages map lon/lat: CRS84)."""
    names = {p.name for p in c.queryables}
    check_params(params, names.union(ITEMS))
    limit = _parse_int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = _parse_int(params, "offset", 0, 0, MAX_OFFSET)
    crs = parse_crs(params.get("crs"), "crs")
    box_crs = parse_crs(params.get("bbox-crs"), "bbox-crs")
    bbox = None
    if (raw := params.get("bbox")) is not None:
        if box_crs is STORAGE:
            bbox = read_bbox(raw, error=BadRequest, echo=True, heights=True, antimeridian=True)
        else:  # in that CRS's axis order and units: numbers, min before max
            bbox = bbox_in_storage_order(box_crs, _read_numbers(raw))
    time: TimeFilter | None = None
    if (raw := params.get("datetime")) is not None:
        try:
            time = parse_datetime(raw)
        except ValueError as exc:
            raise BadRequest(
                f"datetime: {exc}.", errors=[{"field": "datetime", "message": str(exc)}]
            ) from None
    filters = {name: _parse_filter(c, name, params[name]) for name in sorted(names & params.keys())}
    cql = None
    if (raw := params.get("filter")) is not None:
        filter_crs = parse_crs(params.get("filter-crs"), "filter-crs")
        cql = compile_filter(parse(raw, params.get("filter-lang")), c.filterable, c.geom_sql, filter_crs)
    shape = Shape(
        filters=tuple(filters),
        # minLon > maxLon: the box crosses the antimeridian (legal in OGC).
        bbox="" if bbox is None else ("antimeridian" if bbox[0] > bbox[2] else "box"),
        start=time is not None and time.start is not None,
        end="" if time is None or time.end is None else ("<=" if time.end_inclusive else "<"),
        crs=STORAGE.uri if html else crs.uri,
        bbox_crs=box_crs.uri,
        cql=cql.sql if cql else "",
    )
    values = params_for(shape, limit=limit, offset=offset, bbox=bbox, filters=filters, time=time)
    if cql:
        values.update(cql.values)
    return ItemsQuery(items_sql(c.id, shape), values, limit, offset, crs)
