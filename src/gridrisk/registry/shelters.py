"""Shelters (应急避难场所): the registry's description, and what it adds: capacity, check-ins, coverage.

- Capacity defaults to effective area ÷ the class's m² per person (API and import); `full` follows
  occupancy; standby and closed need the shelter empty.
- Check-ins are not registry edits: one atomic UPDATE per request, no new version, so a hundred grid
  workers checking people in never lose a count and never invalidate an editor's ETag.
- `GET /shelters/nearest` (true distance) and `GET /shelters/coverage` (services/shelters.py).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from psycopg import AsyncConnection

from gridrisk.api.bare_route import BareRoute
from gridrisk.api.deps import FieldWorker, PoolDep, Reader
from gridrisk.api.etags import etag
from gridrisk.api.geojson import GEOJSON, raw_json
from gridrisk.api.responses import OrjsonResponse
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, NotFound
from gridrisk.models.shelters import (
    MAX_DELTA,
    RECEIVING,
    CoverageReport,
    HistoryEntry,
    NearestQuery,
    OccupancyChange,
    OccupancyState,
    ShelterCollection,
    ShelterCreate,
    ShelterPublic,
    ShelterUpdate,
    Status,
    default_capacity,
    figure_errors,
)
from gridrisk.registry import store
from gridrisk.registry.kind import (
    DISTRICT,
    Bulk,
    Extension,
    FeatureKind,
    Filter,
    GeometryRules,
    Lookup,
    Models,
    Property,
    Publish,
    district_name,
    split_list,
    text_search,
)
from gridrisk.services.shelters import coverage_json
from gridrisk.vocabulary import SHELTER_CLASSES, SHELTER_STATUSES

DEFAULT_NEAREST = ("open", "standby")
NEAREST_ALL = None  # LIMIT NULL: every shelter that passes the filters is a candidate
COLLECTION = {200: {"content": {GEOJSON: {}}, "model": ShelterCollection, "description": "FeatureCollection"}}
OCCUPIED = {409: {"description": "Not while people are checked in, or the capacity would be below them"}}
COVERAGE_RULE = (
    "A shelter that is not closed reaches a cell when the cell's centroid lies within the service radius "
    "of the shelter's class (emergency 500 m, fixed 2.5 km, central 3.99 km by default; geodesic). Each "
    "shelter's capacity is shared among the cells it reaches in proportion to their population; a cell's "
    "capacity is the sum of its shares, ratio = capacity ÷ population, shortfall = max(0, population − "
    "capacity) persons."
)
OCCUPANCY_DOC = (
    f"For grid workers, operators and admins (the `field` right). |delta| ≤ {MAX_DELTA:,}, not 0. "
    "One atomic update: the shelter turns `full` when occupancy reaches capacity and `open` again below "
    "it. 409 when there is not enough room (`free` says how many places are left), when the count would "
    "go below zero (`occupancy`), or when the shelter is standby or closed (open it first: PATCH status "
    "open). The shelter's version and ETag do not change. With `order_id`, the people are that work "
    "order's evacuees: they use up the places reserved for it here (`reservation_used`), which then "
    "count in the occupancy instead of as reserved; without it, they are walk-ins."
)
LayerParam = Annotated[str, Query(max_length=64, description="A grid layer")]


def _receiving_status(status: str, occupancy: int, capacity: int) -> str:
    """An open shelter reads `full` when no place is left, and `open` again when one frees up."""
    if status in RECEIVING:
        return "full" if occupancy >= capacity else "open"
    return status


def _check_empty(row: dict, to: str) -> None:
    if row["occupancy"] > 0:
        raise Conflict(
            f"The shelter holds {row['occupancy']} people; check them out (POST /shelters/{row['id']}"
            f"/occupancy with a negative delta) before it goes {to}.",
            occupancy=row["occupancy"],
            errors=[{"field": "status", "message": f"not while people are checked in ({row['occupancy']})"}],
        )


async def _class(conn: AsyncConnection, code: str) -> dict:
    """A (known) class's planning figures."""
    cur = await conn.execute(sql("shelter_class"), {"class": code})
    return await cur.fetchone()


def _check(model: ShelterCreate) -> list[dict[str, str]]:
    return figure_errors(model.total_area_m2, model.effective_area_m2, model.capacity)


def _columns(model: ShelterCreate, cols: dict[str, Any]) -> None:
    # Whether the status was given: an import leaves a registered shelter's status as it is otherwise.
    cols["status"] = model.status if "status" in model.model_fields_set else None


async def _create(conn: AsyncConnection, body: ShelterCreate, cols: dict[str, Any]) -> None:
    if cols["capacity"] is None:
        cols["capacity"] = default_capacity(
            body.effective_area_m2, (await _class(conn, body.shelter_class))["m2_per_person"]
        )
    cols["status"] = _receiving_status(body.status, 0, cols["capacity"])


async def _patch(conn: AsyncConnection, row: dict, body: ShelterUpdate, sent: dict, cols: dict) -> None:
    """Capacity and status follow the figures and the people checked in (see the PATCH description)."""
    old = await _class(conn, row["class"])
    cls = await _class(conn, body.shelter_class) if "class" in sent else old
    total = sent.get("total_area_m2", row["total_area_m2"])
    effective = sent.get("effective_area_m2", row["effective_area_m2"])
    figures_changed = "effective_area_m2" in sent or "class" in sent
    was_derived = row["effective_area_m2"] is not None and row["capacity"] == default_capacity(
        row["effective_area_m2"], old["m2_per_person"]
    )
    if "capacity" in sent:
        capacity = body.capacity
    elif figures_changed and was_derived:
        capacity = None  # it followed the area before; it follows the new figures
    else:
        capacity = row["capacity"]
    store.raise_problems(figure_errors(total, effective, capacity))
    if capacity is None:
        capacity = default_capacity(effective, cls["m2_per_person"])
    if capacity < row["occupancy"]:
        raise Conflict(
            f"The shelter holds {row['occupancy']} people; the capacity cannot go below that ({capacity}).",
            occupancy=row["occupancy"],
            errors=[{"field": "capacity", "message": f"below the occupancy ({row['occupancy']})"}],
        )
    cols["capacity"] = capacity
    status = sent.get("status", row["status"])
    if "status" in sent and status in ("standby", "closed") and row["status"] != status:
        _check_empty(row, status)
    cols["status"] = _receiving_status(status, row["occupancy"], capacity)


async def _close(conn: AsyncConnection, row: dict, who: str) -> None:
    _check_empty(row, "closed")
    await store.close_row(conn, SHELTERS, row["id"], who)


def _from_row(v: dict[str, Any]) -> dict[str, Any]:
    """Facilities in one CSV cell (separated by ; | 、 or ，); the shape GET returns reads back."""
    if isinstance(v.get("facilities"), str):
        v["facilities"] = split_list(v["facilities"])
    if "district_code" not in v and isinstance(v.get("district"), dict):
        v["district_code"] = v["district"].get("code")
    if v.get("status") == "full":
        v["status"] = "open"
    return v


# ---------------------------------------------------------------------------------------------
# The shelters' own routes


router = APIRouter()


NEAREST_DOC = (
    "Ordered by geodesic distance (WGS 84 spheroid) from the point to each shelter's site "
    "(0 inside a polygon site), as PostGIS measures it on geography. Each "
    "feature has `distance_m`, `reserved` (places held for the evacuees of live work orders) and `free` "
    "(capacity − occupancy − reserved: what can be offered to anybody else). By default only shelters "
    "that can take people are listed: `open` and `standby` (a standby site is ready and opens on demand); "
    "`full` and `closed` ones are left out unless `status` names them (repeat it for several). "
    "A point outside the city is still answered (people near the boundary need a shelter too); "
    "`inside_city` tells which. Coordinates out of range are a 422. Answered from the worker's memory, "
    "kept current from the outbox: a check-in or a reservation acknowledged before the request shows in it."
)


async def nearest_shelters(request: Request, _: Reader, query: Annotated[NearestQuery, Query()]) -> Response:
    statuses = tuple(dict.fromkeys(query.status or DEFAULT_NEAREST))
    finder = request.app.state.nearest_shelters
    body = await finder.answer(
        query.lon, query.lat, query.limit, statuses, query.shelter_class, query.min_free
    )
    if body is None:  # memory cannot answer yet (loading, or the city outline being re-read)
        body = (await nearest_from_database(request.app.state.pool, query, statuses)).encode()
    return raw_json(body)


async def nearest_from_database(pool, query: NearestQuery, statuses: tuple[str, ...]) -> str:
    """The same answer from PostGIS (shelter_nearest.sql): the KNN index, then the exact distances."""
    params = {
        "lon": query.lon,
        "lat": query.lat,
        "limit": query.limit,
        # The index orders by spherical distance; a margin of candidates absorbs the ≤0.5% difference.
        "candidates": query.limit * 2 + 10,
        "class": query.shelter_class,
        "statuses": list(statuses),
        "min_free": query.min_free,
    }
    async with pool.connection() as conn:
        row = await (await conn.execute(sql("shelter_nearest"), params)).fetchone()
        if row["scan_more"]:  # places held for evacuees ruled out too many candidates: ask them all
            params["candidates"] = NEAREST_ALL
            row = await (await conn.execute(sql("shelter_nearest"), params)).fetchone()
    return row["body"]


# A bare route (api/bare_route.py): FastAPI's request layer would cost as much as the answer. On
# a router of its own, which the app places among the first (main.py): routes are matched one by
# one, and behind every other router's this one spent more on matching than on answering.
nearest_router = APIRouter(tags=["shelters"])
nearest_router.add_api_route(
    "/shelters/nearest",
    nearest_shelters,
    methods=["GET"],
    route_class_override=BareRoute,
    summary="The shelters nearest a point, by true distance in metres, with their free places",
    description=NEAREST_DOC,
    responses=COLLECTION,
)


@router.get(
    "/shelters/coverage",
    response_model=None,
    summary="Shelter coverage of a grid: city and district totals first, then every cell (worst first)",
    description=COVERAGE_RULE
    + " Totals add up the cells (so the city's shortfall counts the people without a place; a "
    "surplus in one cell seats nobody in another) and give the capacity by class, e.g. whether fixed "
    "shelters hold the 15% of the population the national standard asks for. Idle shelters reach no "
    "populated cell. `cells=false` returns the totals alone.",
    responses={200: {"model": CoverageReport, "description": "The coverage report"}},
)
async def shelter_coverage(
    pool: PoolDep,
    _: Reader,
    layer: LayerParam = "comprehensive",
    cells: Annotated[bool, Query(description="Include the per-cell list")] = True,
):
    async with pool.connection() as conn:
        body = await coverage_json(conn, layer, "report", {"with_cells": cells})
    return raw_json(body, media_type="application/json")


@router.get(
    "/shelters/coverage.geojson",
    summary="Shelter coverage per cell as GeoJSON (cell outlines with population, capacity, shortfall)",
    description=COVERAGE_RULE + " For a map to paint the gaps; totals are at GET /shelters/coverage.",
    responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection of the layer's cells"}},
)
async def shelter_coverage_geojson(pool: PoolDep, _: Reader, layer: LayerParam = "comprehensive"):
    async with pool.connection() as conn:
        return raw_json(await coverage_json(conn, layer, "geojson", {"precision": 6}))


@router.post(
    "/shelters/{shelter_id}/occupancy",
    response_model=OccupancyState,
    summary="Check people in (+delta) or out (−delta) at an open shelter; concurrent check-ins never "
    "lose a count",
    description=OCCUPANCY_DOC,
    responses={409: {"description": "Not enough room, below zero, or the shelter is not open"}},
)
async def change_occupancy(shelter_id: int, body: OccupancyChange, pool: PoolDep, _: FieldWorker):
    async with pool.connection() as conn:
        cur = await conn.execute(
            sql("shelter_occupancy"), {"delta": body.delta, "id": shelter_id, "order_id": body.order_id}
        )
        row = await cur.fetchone()
        if row is not None:
            return OrjsonResponse(row, headers={"ETag": etag(row["version"])})
        # Refused: say why, from the row as it is now.
        cur = await conn.execute(sql("shelter_occupancy_state"), {"id": shelter_id})
        now = await cur.fetchone()
    if now is None:
        raise NotFound(f"No shelter with id {shelter_id}.")
    free = now["capacity"] - now["occupancy"]
    state = {"shelter_status": now["status"], "occupancy": now["occupancy"], "capacity": now["capacity"]}
    if now["status"] not in RECEIVING:
        raise Conflict(
            f"The shelter is {now['status']}: open it first (PATCH /shelters/{shelter_id} with "
            '{"status": "open"}), then check people in.',
            **state,
            free=free if now["status"] != "closed" else 0,
        )
    if body.delta > 0:
        raise Conflict(
            f"Not enough room: {body.delta} to check in, {free} place(s) free. Send the people who fit, "
            "and the rest to the next shelter (GET /shelters/nearest).",
            **state,
            free=free,
            requested=body.delta,
        )
    raise Conflict(
        f"Only {now['occupancy']} people are checked in; {-body.delta} cannot check out.",
        **state,
        free=free,
        requested=body.delta,
    )


# Places nobody occupies and no live work order holds for its evacuees (0 when closed).
FREE = (
    "CASE WHEN s.status = 'closed' THEN 0"
    " ELSE greatest(s.capacity - s.occupancy - shelter_reserved(s.id), 0) END"
)

SHELTERS = FeatureKind(
    name="shelter",
    alias="s",
    models=Models(ShelterCreate, ShelterUpdate, ShelterPublic, HistoryEntry),
    columns=(
        "code",
        "name",
        "class",
        "total_area_m2",
        "effective_area_m2",
        "capacity",
        "status",
        "facilities",
        "address",
        "district_code",
        "managing_unit",
    ),
    filters=(
        Filter(
            "shelter_class",
            Annotated[
                str | None, Query(alias="class", max_length=32, description="emergency, fixed or central")
            ],
            "s.class = %(shelter_class)s",
        ),
        Filter("status", Status | None, "s.status = %(status)s"),
        Filter(
            "district",
            Annotated[str | None, Query(pattern=r"^\d{6}$", description="District code")],
            "s.district_code = %(district)s",
        ),
        Filter(
            "min_free",
            Annotated[
                int | None,
                Query(ge=0, le=10_000_000, description="At least this many free places (not closed)"),
            ],
            f"(s.status <> 'closed' AND {FREE} >= %(min_free)s)",
            cast="int",
        ),
        text_search(
            ("s.name", "s.code", "s.address", "s.managing_unit"),
            "Text in name, code, address or managing unit",
        ),
    ),
    lookups=(Lookup("class", "shelter_classes", "class", "shelter class", known="classes"), DISTRICT),
    geometry=GeometryRules(district=True),
    json_columns=("facilities",),
    properties=(
        Property(
            "class",
            "s.class",
            "string",
            "Shelter class",
            enum=SHELTER_CLASSES,
            queryable=True,
            tile="String: central, fixed or emergency",
        ),
        Property(
            "status",
            "s.status",
            "string",
            "Status",
            enum=SHELTER_STATUSES,
            queryable=True,
            tile="String: standby, open, full or closed",
        ),
        Property("capacity", "s.capacity", "integer", "Places", tile="Number: people it can take"),
        Property(
            "occupancy", "s.occupancy", "integer", "People checked in", tile="Number: people checked in"
        ),
        Property(
            "free", FREE, "integer", "Places neither occupied nor reserved by a work order (0 when closed)"
        ),
        Property(
            "reserved",
            "shelter_reserved(s.id)",
            "integer",
            "Places held for the evacuees of live work orders",
        ),
        Property("total_area_m2", "s.total_area_m2", "number", "Total area, m²"),
        Property("effective_area_m2", "s.effective_area_m2", "number", "Effective area, m²"),
        Property("address", "s.address", "string", "Address"),
        Property("district_code", "s.district_code", "string", "District code", queryable=True),
        district_name("s"),
        Property("managing_unit", "s.managing_unit", "string", "Managing unit", queryable=True),
    ),
    publish=Publish(
        title="Shelters (应急避难场所)",
        description="Central, fixed and emergency shelters with areas, capacity and live occupancy. "
        "Feature id: the shelter's integer id.",
        tile_description="Emergency shelters with live occupancy.",
        updated="Last registry change",
    ),
    bulk=Bulk(
        aliases={
            "shelter_class": "class",
            "total_area": "total_area_m2",
            "effective_area": "effective_area_m2",
        },
        from_row=_from_row,
        derive=("shelter_import_derive",),
        checks=("shelter_import_checks",),
        upsert="shelter_import_upsert",
        notes="`status`: standby, open or closed; `facilities` separated by ; or 、. Capacity defaults to "
        "the effective area ÷ the class's m² per person; the district to the one the site lies in; a status "
        "left out keeps a registered shelter's status. Occupancy is never imported.",
    ),
    docs={
        "feature": "The shelter as a GeoJSON Feature: class, areas (m²), capacity, occupancy, `free` "
        "places (0 when closed), status, facilities, district, managing unit, version, and `warnings` "
        "(e.g. an effective area below the 2,000 m² the national standard asks of a site).",
        "create": "`capacity` defaults to floor(effective_area_m2 ÷ the class's m² per person); give one "
        "of the two. `district_code` is derived from the site when not given. The response's "
        "`warnings` flag an effective area below the class's minimum (2,000 m², national standard).",
        "update": "Only the fields sent change. `capacity: null` derives it from the effective area again; "
        "a new effective area or class also re-derives a capacity that was the derived figure, and keeps "
        "one that was set by hand. `status`: standby, open or closed (`full` follows occupancy); standby and "
        "closed need the shelter empty, and the capacity cannot go below the people checked in (409). "
        "A new site re-derives the district unless `district_code` is sent.",
        "close": "Sets the status to closed (it stops counting in coverage and nearest). Not while "
        "people are checked in (409). Closing a closed shelter changes nothing.",
        "history_description": "Check-ins are not versions (they change occupancy alone); a version shows "
        "the occupancy as it was when the record was edited.",
    },
    responses={"update": OCCUPIED, "close": OCCUPIED},
    extension=Extension(
        check=_check, columns=_columns, create=_create, patch=_patch, close=_close, routes=router
    ),
)
