"""Targeted warnings (靶向预警): post (JSON or CAP 1.2), update by re-posting, cancel, read, rules.

A posted warning becomes one work order per exposed target in its area, assigned to the workers of
the comprehensive cell that holds the target, in the same transaction (services/warning_targeting.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from psycopg import AsyncConnection
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from gridrisk.api.deps import Admin, PoolDep, Reader, Writer
from gridrisk.api.etags import etag, parse_if_match
from gridrisk.api.geojson import GEOJSON, paged_collection, raw_json
from gridrisk.api.params import BBox, PageDep
from gridrisk.api.responses import OrjsonResponse
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, InvalidInput, NotFound, PreconditionFailed, UnsupportedMediaType
from gridrisk.imports.cap import CapError, parse_cap
from gridrisk.models.warnings import (
    CancelIn,
    DueTimes,
    HazardRules,
    HazardType,
    Level,
    RulesOut,
    WarningIn,
    WarningSpec,
    WarningStatus,
    WarningSummary,
    spec_from_json,
)
from gridrisk.services.map_image import MAX_PIXELS, degrees_per_pixel, render_warning
from gridrisk.services.records import fetch_all, fetch_one, no_warning, warning_or_404
from gridrisk.services.warning_report import report_csv, warning_report
from gridrisk.services.warning_rules import replace_hazard_rules, rules, set_due_times
from gridrisk.services.warning_targeting import (
    Outcome,
    WarningConflict,
    WarningInputError,
    WarningNotFound,
    WarningStale,
    apply_warning,
    cancel_warning,
    resolve_area,
)
from gridrisk.vocabulary import HAZARD_KINDS

router = APIRouter(tags=["warnings"])

_XML_TYPES = ("application/xml", "text/xml", "application/cap+xml")


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """SCHEMA with its $defs references inlined, so it can sit anywhere in the OpenAPI document."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


_POST_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": _inline(WarningIn.model_json_schema())},
            "application/xml": {
                "schema": {
                    "type": "string",
                    "description": "A CAP 1.2 <alert> (also text/xml, application/cap+xml)",
                }
            },
        },
    }
}
SUMMARY_DOC = (
    "The warning as JSON: its fields and `area` (GeoJSON), `affected_cells` (per layer, the cells more "
    "than 0.1% inside the area; `?cells=true` lists their codes), `targets_by_kind` (orders not cancelled, "
    "by target type and kind), `orders` (by status and action, `closure_rate` = done ÷ orders not "
    "cancelled, `overdue`, `cells_with_orders`, `without_cell`) and `evacuation` (orders, threatened "
    "persons, and per named shelter the people sent there against its free places)."
)
SUMMARY = {200: {"model": WarningSummary, "description": SUMMARY_DOC}}


def _invalid(exc: WarningInputError) -> InvalidInput:
    return InvalidInput(exc.message, errors=[{"field": exc.field, "message": exc.message}], **exc.extra)


async def _read_spec(request: Request, unknown_hazard: str | None) -> WarningSpec:
    """The posted warning, JSON or CAP by Content-Type, as a WarningSpec (422 naming what is wrong)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            model = WarningIn.model_validate_json(body)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
            ) from exc
        return spec_from_json(model)
    if ctype in _XML_TYPES or ctype.endswith("+xml"):
        try:
            return parse_cap(body, unknown_hazard=unknown_hazard)
        except CapError as exc:
            raise _invalid(exc) from exc
    raise UnsupportedMediaType(
        f"Send the warning as application/json, or as a CAP 1.2 document (application/xml); got '{ctype}'."
    )


async def _summary(conn: AsyncConnection, warning_id: int, *, with_cells: bool = False) -> tuple[str, int]:
    row = await fetch_one(conn, "warning_summary", {"warning_id": warning_id, "with_cells": with_cells})
    if row is None:
        raise no_warning(warning_id)
    return row["body"], row["version"]


def _with_result(body: str, outcome: Outcome, status: int, version: int) -> Response:
    """The summary with the post's `result` spliced in (the summary is JSON text from the database)."""
    text = body[:-1] + ',"result":' + orjson.dumps(outcome.result()).decode() + "}"
    headers = {"ETag": etag(version), "Location": f"/warnings/{outcome.warning_id}"}
    return Response(text.encode(), status_code=status, media_type="application/json", headers=headers)


@router.post(
    "/warnings",
    status_code=201,
    response_model=None,
    summary="Post a warning (JSON or CAP 1.2): every exposed target in its area gets a work order",
    description=(
        "JSON (`application/json`): `identifier`, `hazard_type`, `level` (blue, yellow, orange, red), "
        "`valid_from`, `valid_until`, `headline`, `description`, `instruction`, and `area`: exactly one of "
        "`geometry` (GeoJSON Polygon/MultiPolygon), `districts` (codes), or `layer` with `cells`.\n\n"
        "CAP 1.2 (`application/xml`): msgType Alert, Update (names the earlier message in `references`) or "
        "Cancel (an Update naming no known message starts a new warning; a Cancel naming none is a 422); "
        "status must be Actual; severity Extreme/Severe/Moderate/Minor → red/orange/yellow/blue; "
        "event/eventCode → hazard type (an unknown one is a 422 naming it, unless `unknown_hazard=other`); "
        "area from polygons (lat,lon pairs), circles (lat,lon radius-km) and, where a block has neither, "
        "district geocodes.\n\n"
        "Targets: the active risk sources, unremediated hazard points and vulnerable sites whose geometry "
        "intersects the area and whose kind the rules (GET /warning-rules) expose to the hazard; each gets "
        "one order, with the action the level demands, assigned to the comprehensive cell holding it (its "
        "grid worker and the target's unit answer for it), due after the level's due time, in the same "
        "transaction.\n\n"
        "Matching, in the same transaction: a need the rules name (warning_rule_needs) books the nearest "
        "available rescue team with the capability; the people of every evacuation get shelter places "
        "reserved across all live warnings, never beyond a shelter's free places, as many as possible and "
        "with the least total person-distance (a group may be split); supplies are reserved from the "
        "nearest depots with free stock. What could not be booked is on the order (`match_notes`); "
        "`result.matching` counts what this post booked. Concurrent posts never book a team, a place or "
        "an item twice; a re-post keeps what is booked; an order that ends releases its bookings.\n\n"
        "Posting a known identifier again (or a CAP Update) updates the "
        "warning: new targets get orders, orders whose target left are cancelled, actions escalate when the "
        "level rises (a done order reopens), nothing is duplicated, and a downgrade weakens no issued order. "
        "201 for a new warning, 200 otherwise; `result` says what changed. Bad input (invalid, empty or "
        "out-of-city area, unknown enum, expired window) is a 422 and writes nothing."
    ),
    openapi_extra=_POST_BODY,
    responses={
        201: {"model": WarningSummary, "description": "Created; " + SUMMARY_DOC},
        200: {"model": WarningSummary, "description": "An update of a known warning; " + SUMMARY_DOC},
        409: {"description": "The warning was cancelled, or the message is older than its current state"},
        415: {"description": "Neither JSON nor XML"},
    },
)
async def post_warning(
    request: Request,
    pool: PoolDep,
    who: Writer,
    unknown_hazard: Annotated[
        Literal["other"] | None,
        Query(description="CAP only: take an event that names no known hazard type as this one"),
    ] = None,
):
    spec = await _read_spec(request, unknown_hazard)
    async with pool.connection() as conn:
        try:
            if spec.msg_type == "Cancel":
                outcome = await cancel_warning(conn, who.name, spec=spec)
            else:
                area = await resolve_area(conn, spec.area)
                outcome = await apply_warning(conn, spec, area, who.name)
        except WarningInputError as exc:  # CapError included
            raise _invalid(exc) from exc
        except WarningConflict as exc:
            raise Conflict(exc.message, **exc.extra) from exc
        body, version = await _summary(conn, outcome.warning_id)
    return _with_result(body, outcome, 201 if outcome.created else 200, version)


@router.get(
    "/warnings",
    summary="Warnings as GeoJSON (their areas), newest first, with their orders by status",
    responses={
        200: {"content": {GEOJSON: {}}, "description": "FeatureCollection with numberMatched and links"}
    },
)
async def list_warnings(
    request: Request,
    pool: PoolDep,
    _: Reader,
    bbox: BBox,
    page: PageDep,
    status: Annotated[
        WarningStatus | None,
        Query(description="active (not expired), expired (active, past valid_until) or cancelled"),
    ] = None,
    hazard_type: HazardType | None = None,
    level: Level | None = None,
):
    params = {
        "status": status,
        "hazard_type": hazard_type,
        "level": level,
        "bbox": bbox,
        "limit": page.limit,
        "offset": page.offset,
    }
    async with pool.connection() as conn:
        found = await fetch_one(conn, "warning_search", params)
        rows = await fetch_all(conn, "warning_feature", {"ids": list(found["ids"])}) if found["ids"] else []
    return paged_collection(
        request,
        offset=page.offset,
        limit=page.limit,
        matched=found["matched"],
        features=[r["feature"] for r in rows],
    )


@router.get(
    "/warnings/{warning_id}",
    response_model=None,
    summary="One warning and where its orders stand",
    responses=SUMMARY,
)
async def get_warning(
    warning_id: int,
    pool: PoolDep,
    _: Reader,
    cells: Annotated[bool, Query(description="List the codes of the affected cells per layer")] = False,
):
    async with pool.connection() as conn:
        body, version = await _summary(conn, warning_id, with_cells=cells)
    return raw_json(body, media_type="application/json", headers={"ETag": etag(version)})


@router.post(
    "/warnings/{warning_id}/cancel",
    response_model=None,
    summary="End a warning: its unfinished work orders are cancelled (done ones stay done)",
    description="If-Match is optional. Cancelling a cancelled warning changes nothing. A cancelled warning "
    "cannot be re-posted under the same identifier (409).",
    responses={**SUMMARY, 412: {"description": "Stale If-Match"}},
)
async def cancel(
    warning_id: int,
    pool: PoolDep,
    who: Writer,
    body: CancelIn | None = None,
    if_match: Annotated[str | None, Header(description="ETag of the version you read")] = None,
):
    expected = parse_if_match(if_match, required=False)
    async with pool.connection() as conn:
        try:
            outcome = await cancel_warning(
                conn,
                who.name,
                warning_id=warning_id,
                reason=body.reason if body else None,
                expected_version=expected,
            )
        except WarningNotFound as exc:
            raise NotFound(str(exc)) from exc
        except WarningStale as exc:
            raise PreconditionFailed(
                f"The warning changed since you read it (you sent version {expected}, it is now "
                f"{exc.current}); read it again.",
                headers={"ETag": etag(exc.current)},
                current_version=exc.current,
            ) from exc
        text, version = await _summary(conn, warning_id)
    return _with_result(text, outcome, 200, version)


@router.get(
    "/warnings/{warning_id}/history",
    summary="Every message applied to a warning: who, when, which fields changed, what it did to the orders",
)
async def warning_history(warning_id: int, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        await warning_or_404(conn, warning_id)
        rows = await fetch_all(conn, "warning_history", {"warning_id": warning_id})
    return OrjsonResponse(rows)


# ---------------------------------------------------------------------------------------------
# Rules


RULES_DOC = (
    "`hazards` maps each hazard type to the kinds of target it exposes (a risk-source category or a "
    "hazard-point kind) and the action each level demands of them; `due_minutes` is the time a worker has "
    "per level. Changes apply to warnings posted or re-posted afterwards."
)


@router.get("/warning-rules", response_model=RulesOut, summary="The targeting rules", description=RULES_DOC)
async def get_rules(pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        return OrjsonResponse(await rules(conn))


@router.put(
    "/warning-rules/due-times",
    response_model=RulesOut,
    summary="Set the due time of each level (admin; recorded)",
    description=RULES_DOC,
)
async def put_due_times(body: DueTimes, pool: PoolDep, who: Admin):
    new = body.model_dump(exclude={"reason"})
    async with pool.connection() as conn:
        return OrjsonResponse(await set_due_times(conn, new, body.reason, who.name))


@router.put(
    "/warning-rules/{hazard_type}",
    response_model=RulesOut,
    summary="Replace the kinds of target one hazard exposes and their actions (admin; recorded)",
    description=RULES_DOC
    + " Kinds are risk-source categories (GET /risk-sources categories) or hazard-point "
    f"kinds ({', '.join(HAZARD_KINDS)}); each may appear once.",
)
async def put_hazard_rules(hazard_type: HazardType, body: HazardRules, pool: PoolDep, who: Admin):
    async with pool.connection() as conn:
        out = await replace_hazard_rules(conn, hazard_type, body.targets, body.reason, who.name)
    return OrjsonResponse(out)


REPORT_DOC = (
    "The closed loop of one warning, for the duty office and leaders: for the city, each district and "
    "each cell with orders — orders by status, the minutes from issue to acknowledgement and to "
    "completion (p50, p90), overdue orders, people planned for evacuation, evacuated (orders done) and "
    "holding shelter places now, teams committed and still out, supply units committed; then every team "
    "booked (base, target, capability, distance) and every depot's supplies reserved or drawn. "
    "`f=csv` (or `Accept: text/csv`) gives the scopes as a CSV in UTF-8 with a BOM, headers in Chinese "
    "and English, ready for Excel."
)


@router.get(
    "/warnings/{warning_id}/report",
    response_model=None,
    summary="A warning's closed loop: orders, times, evacuation, teams and supplies, per district and cell",
    description=REPORT_DOC,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}, "description": "The report"}},
)
async def warning_report_route(
    warning_id: int,
    request: Request,
    pool: PoolDep,
    _: Reader,
    f: Annotated[Literal["json", "csv"] | None, Query(description="json (default) or csv")] = None,
):
    async with pool.connection() as conn:
        head = await fetch_one(conn, "warning_report_head", {"warning_id": warning_id})
        if head is None:
            raise no_warning(warning_id)
        report = await warning_report(conn, warning_id, _jsonable_head(head))
    if f == "csv" or (f is None and "text/csv" in request.headers.get("accept", "")):
        name = f"warning-{warning_id}-report.csv"
        return Response(
            report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return OrjsonResponse(report)


def _jsonable_head(head: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in head.items()}


@router.get(
    "/warnings/{warning_id}/map.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The warning as a PNG image"}},
    summary="A warning as a picture: its area over the four-colour map, its orders by status",
)
async def warning_png(
    warning_id: int,
    pool: PoolDep,
    _: Reader,
    layer: Annotated[str, Query(max_length=64, description="The grid drawn under it")] = "comprehensive",
    width: Annotated[int, Query(ge=200, le=MAX_PIXELS)] = 1600,
    height: Annotated[int, Query(ge=200, le=MAX_PIXELS)] = 1200,
):
    async with pool.connection() as conn:
        row = await fetch_one(conn, "map_image_warning", {"warning_id": warning_id})
        if row is None:
            raise no_warning(warning_id)
        box = (row["minx"], row["miny"], row["maxx"], row["maxy"])
        params = {"layer": layer, "district": None, "at": None, "bbox": list(box)}
        cur = await conn.execute(
            sql("map_image_cells"), {**params, "tolerance": degrees_per_pixel(box, width, height) / 2}
        )
        cells = await cur.fetchall()
    png = await run_in_threadpool(render_warning, row, cells, width=width, height=height)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})
