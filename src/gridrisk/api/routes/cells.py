"""Which cell am I in: one point (GET) or a GPS trace of up to 10,000 points (POST), from memory.

Answered by the worker's `LookupService` (lookup/state.py): an in-memory index of every layer's
cells with colours, counts and workers kept current from the outbox, byte for byte what
cells_at.sql answers, and as current.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from gridrisk.api.bare_route import BareRoute
from gridrisk.api.deps import Reader, require
from gridrisk.api.geojson import raw_json
from gridrisk.errors import InvalidInput, NotFound, PayloadTooLarge
from gridrisk.lookup.state import LookupService
from gridrisk.models.layers import CellsAtBatch, CellsAtBatchPublic, CellsAtPublic

router = APIRouter(tags=["cells"])
MAX_POINTS = 10_000

EDGE_RULE = (
    "A point on a shared edge or vertex touches several cells; the one with the smallest code "
    "(in byte order) is returned, on every call."
)


# GET /cells/at is the hottest request there is: its two numbers are read here rather than by
# FastAPI's parameter machinery, which costs more than the lookup itself (see api/bare_route.py).
# The answers are the same: what the fast path cannot read exactly is validated by pydantic.
_read = require("read")  # the Reader dependency, called directly
_PLAIN = re.compile(rb"-?[0-9]{1,3}(?:\.[0-9]{1,20})?")  # a decimal float() and pydantic read alike
_LIMITS = {b"lon": 180.0, b"lat": 90.0}
_PARAMETERS = [
    {
        "name": name,
        "in": "query",
        "required": True,
        "description": f"{text}, WGS 84",
        "schema": {
            "type": "number",
            "minimum": -limit,
            "maximum": limit,
            "title": name.title(),
            "description": f"{text}, WGS 84",
            "examples": [example],
        },
    }
    for name, text, limit, example in (("lon", "Longitude", 180, 118.7969), ("lat", "Latitude", 90, 32.0603))
]


class _Point(BaseModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


def _point(request: Request) -> tuple[float, float]:
    """The query's lon and lat, or the 422 FastAPI would give for them."""
    query: bytes = request.scope.get("query_string", b"")
    if b"%" not in query and b"+" not in query:
        found: dict[bytes, bytes] = {}
        for part in query.split(b"&"):
            key, _, value = part.partition(b"=")
            if key in _LIMITS:
                found[key] = value  # the last one wins, as in Starlette's query_params
        if len(found) == 2 and all(_PLAIN.fullmatch(v) for v in found.values()):
            lon, lat = float(found[b"lon"]), float(found[b"lat"])
            if abs(lon) <= 180.0 and abs(lat) <= 90.0:
                return lon, lat
    params = request.query_params
    try:
        point = _Point.model_validate({k: params[k] for k in ("lon", "lat") if k in params})
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("query", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from None
    return point.lon, point.lat


def _service(request: Request) -> LookupService:
    return request.app.state.cell_lookup


async def cells_at(request: Request) -> Response:
    await _read(request)  # first, as a dependency would be: 401/403 before 422
    lon, lat = _point(request)
    body, held = await _service(request).one(lon, lat)
    if not held:
        raise NotFound(f"The point ({lon}, {lat}) is outside the city; no cell contains it.")
    return raw_json(body, media_type="application/json")


# A bare route (api/bare_route.py): FastAPI's request layer would cost more than the lookup.
router.add_api_route(
    "/cells/at",
    cells_at,
    methods=["GET"],
    route_class_override=BareRoute,
    response_model=CellsAtPublic,
    summary="Which cell am I in: the containing cell of every layer at a point",
    description=EDGE_RULE,
    responses={
        404: {"description": "The point is outside the city", "content": {"application/problem+json": {}}}
    },
    openapi_extra={"parameters": _PARAMETERS},
)


@router.post(
    "/cells/at",
    response_model=CellsAtBatchPublic,
    summary="Which cell for each of up to 10,000 points (a GPS trace), in order",
    description=EDGE_RULE + " Points outside the city answer inside_city=false with no cells.",
    responses={413: {"description": "More than 10,000 points", "content": {"application/problem+json": {}}}},
)
async def cells_at_batch(body: CellsAtBatch, request: Request, _: Reader):
    points = body.lonlats()
    if len(points) > MAX_POINTS:
        raise PayloadTooLarge(f"{len(points)} points sent; at most {MAX_POINTS} per request.")
    bad = [
        {"field": f"points.{i}", "message": "expected [lon, lat] with -180≤lon≤180, -90≤lat≤90"}
        for i, p in enumerate(points)
        if len(p) < 2 or not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90)
    ]
    if bad:
        raise InvalidInput(f"{len(bad)} point(s) are not valid coordinates.", errors=bad[:100])
    results = await _service(request).many([p[0] for p in points], [p[1] for p in points]) if points else b""
    return raw_json(b'{"count":%d,"results":[%b]}' % (len(points), results), media_type="application/json")
