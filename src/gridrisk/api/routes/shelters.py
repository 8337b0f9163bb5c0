"""Shelters (应急避难场所): registry, live occupancy, nearest shelters, coverage analysis and bulk import.

Registry writes follow the risk-source pattern (ETag = version, If-Match on PATCH, soft delete,
history kept by a trigger). Check-ins are different on purpose: one atomic UPDATE per request, no new
version, so that a hundred grid workers checking people in never lose a count and never invalidate
an editor's ETag.
"""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from psycopg import AsyncConnection
from psycopg import sql as pgsql
from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool

from gridrisk.api.deps import FieldWorker, PoolDep, Reader, SettingsDep, Writer
from gridrisk.api.etags import check_version, etag, parse_if_match
from gridrisk.api.geojson import GEOJSON, paged_collection, raw_json
from gridrisk.api.params import BBox, Lat, Lon, PageDep
from gridrisk.api.registry import check_district, check_inside_city, district_of
from gridrisk.api.responses import OrjsonResponse
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, InvalidInput, NotFound, UnsupportedMediaType
from gridrisk.imports.bulk_import import ImportFormatError, ImportResult, detect_format
from gridrisk.models.shelters import (
    MAX_DELTA,
    RECEIVING,
    CoverageReport,
    HistoryEntry,
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
from gridrisk.services.shelters import (
    NO_JIT,
    coverage_sql,
    import_shelters,
)

router = APIRouter(tags=["shelters"])

FEATURE = {
    200: {
        "content": {GEOJSON: {}},
        "model": ShelterPublic,
        "description": "The shelter as a GeoJSON Feature: class, areas (m²), capacity, occupancy, `free` "
        "places (0 when closed), status, facilities, district, managing unit, version, and `warnings` "
        "(e.g. an effective area below the 2,000 m² the national standard asks of a site).",
    }
}
COLLECTION = {200: {"content": {GEOJSON: {}}, "model": ShelterCollection, "description": "FeatureCollection"}}
IF_MATCH_ERRORS = {
    412: {"description": "Stale If-Match: the shelter changed since it was read (current ETag returned)"},
    428: {"description": "If-Match missing"},
}
OCCUPIED = {409: {"description": "Not while people are checked in, or the capacity would be below them"}}
DEFAULT_NEAREST = ("open", "standby")


async def _features(conn: AsyncConnection, ids: list[int]) -> list[dict]:
    """The shelters' Features (JSON text built in SQL) and versions, in the order of IDS."""
    cur = await conn.execute(sql("shelter_feature"), {"ids": ids})
    return await cur.fetchall()


async def _feature_response(conn: AsyncConnection, shelter_id: int, status: int = 200) -> Response:
    rows = await _features(conn, [shelter_id])
    if not rows:
        raise NotFound(f"No shelter with id {shelter_id}.")
    headers = {"ETag": etag(rows[0]["version"])}
    if status == 201:
        headers["Location"] = f"/shelters/{shelter_id}"
        return Response(rows[0]["feature"].encode(), status_code=201, media_type=GEOJSON, headers=headers)
    return raw_json(rows[0]["feature"], headers=headers)


async def _class(conn: AsyncConnection, code: str) -> dict:
    """The class's planning figures, or 422 naming `class` and the known classes."""
    cur = await conn.execute(
        "SELECT class, m2_per_person, service_radius_m, min_effective_area_m2 FROM shelter_classes"
        " WHERE class = %s",
        (code,),
    )
    row = await cur.fetchone()
    if row is None:
        cur = await conn.execute(
            "SELECT string_agg(class, ', ' ORDER BY class) AS known FROM shelter_classes"
        )
        known = (await cur.fetchone())["known"]
        raise InvalidInput(
            f"Unknown shelter class '{code}'. Known classes: {known}.",
            errors=[{"field": "class", "message": f"unknown class; one of {known}"}],
        )
    return row


def _check_figures(total: float | None, effective: float | None, capacity: int | None) -> None:
    errors = figure_errors(total, effective, capacity)
    if errors:
        detail = "; ".join(e["message"] for e in errors)
        raise InvalidInput(detail[0].upper() + detail[1:] + ".", errors=errors)


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


_GEOM = pgsql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), 4326)").format(pgsql.Placeholder("geometry"))


# ---------------------------------------------------------------------------------------------
# Fixed paths first: /shelters/{id} would otherwise take them.


@router.get(
    "/shelters/nearest",
    summary="The shelters nearest a point, by true distance in metres, with their free places",
    description="Ordered by geodesic distance (WGS 84 spheroid) from the point to each shelter's site "
    "(0 inside a polygon site), found through the GiST index on the shelters' geography. Each "
    "feature has `distance_m` and `free` (capacity − occupancy). By default only shelters that can "
    "take people are listed: `open` and `standby` (a standby site is ready and opens on demand); "
    "`full` and `closed` ones are left out unless `status` names them (repeat it for several). "
    "A point outside the city is still answered (people near the boundary need a shelter too); "
    "`inside_city` tells which. Coordinates out of range are a 422.",
    responses=COLLECTION,
)
async def nearest_shelters(
    pool: PoolDep,
    _: Reader,
    lon: Lon,
    lat: Lat,
    limit: Annotated[int, Query(ge=1, le=100, description="How many shelters")] = 5,
    shelter_class: Annotated[
        str | None, Query(alias="class", max_length=32, description="Only this class")
    ] = None,
    status: Annotated[
        list[Status] | None, Query(description="Statuses to include (default open and standby)")
    ] = None,
    min_free: Annotated[int, Query(ge=0, le=10_000_000, description="At least this many free places")] = 0,
):
    params = {
        "lon": lon,
        "lat": lat,
        "limit": limit,
        # The index orders by spherical distance; a margin of candidates absorbs the ≤0.5% difference.
        "candidates": limit * 2 + 10,
        "class": shelter_class,
        "statuses": list(dict.fromkeys(status or DEFAULT_NEAREST)),
        "min_free": min_free,
    }
    async with pool.connection() as conn:
        cur = await conn.execute(sql("shelter_nearest"), params)
        body = (await cur.fetchone())["body"]
    return raw_json(body)


async def _coverage(pool, layer: str, kind: str, params: dict) -> str:
    """The coverage statement's JSON text for LAYER (404 for an unknown layer), JIT off for it."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM layers WHERE name = %s", (layer,))
        if await cur.fetchone() is None:
            raise NotFound(f"No layer '{layer}'; see GET /layers.")
        async with conn.transaction():
            await conn.execute(NO_JIT)
            cur = await conn.execute(coverage_sql(kind), {"layer": layer, **params})
            return (await cur.fetchone())[kind if kind == "report" else "body"]


COVERAGE_RULE = (
    "A shelter that is not closed reaches a cell when the cell's centroid lies within the service radius "
    "of the shelter's class (emergency 500 m, fixed 2.5 km, central 3.99 km by default; geodesic). Each "
    "shelter's capacity is shared among the cells it reaches in proportion to their population; a cell's "
    "capacity is the sum of its shares, ratio = capacity ÷ population, shortfall = max(0, population − "
    "capacity) persons."
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
    layer: Annotated[str, Query(max_length=64, description="A grid layer")] = "comprehensive",
    cells: Annotated[bool, Query(description="Include the per-cell list")] = True,
):
    body = await _coverage(pool, layer, "report", {"with_cells": cells})
    return raw_json(body, media_type="application/json")


@router.get(
    "/shelters/coverage.geojson",
    summary="Shelter coverage per cell as GeoJSON (cell outlines with population, capacity, shortfall)",
    description=COVERAGE_RULE + " For a map to paint the gaps; totals are at GET /shelters/coverage.",
    responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection of the layer's cells"}},
)
async def shelter_coverage_geojson(
    pool: PoolDep,
    _: Reader,
    layer: Annotated[str, Query(max_length=64, description="A grid layer")] = "comprehensive",
):
    body = await _coverage(pool, layer, "geojson", {"precision": 6})
    return raw_json(body)


def _run_import(database_url: str, data: bytes, fmt: str, actor: str) -> ImportResult:
    """The whole import on its own sync connection; committed on success, rolled back otherwise."""
    with psycopg.connect(database_url, application_name="gridrisk-import") as conn:
        result = import_shelters(conn, data, fmt=fmt, actor=actor)
        if not result.ok:
            conn.rollback()
    return result


@router.post(
    "/shelters/import",
    summary="Upsert shelters by code from a CSV or GeoJSON file: all rows or none",
    description=(
        "CSV columns: code, name, class, lon, lat (or wkt), and optionally total_area_m2, "
        "effective_area_m2, capacity, status (standby | open | closed), facilities (separated by ; or 、), "
        "address, district_code, managing_unit. GeoJSON: a FeatureCollection with the same property names "
        "(what GET /shelters returns reads back; a `crs` member naming another CRS is converted). Capacity "
        "defaults to the effective area ÷ the class's m² per person; the district to the one the site "
        "lies in; a status left out keeps a registered shelter's status. Occupancy is never imported."
    ),
    responses={
        200: {"description": "Imported: counts of inserted, updated and unchanged shelters"},
        415: {"description": "Not a CSV or GeoJSON file", "content": {"application/problem+json": {}}},
        422: {
            "description": "Rejected, nothing written; `report.errors` lists row, field and problem",
            "content": {"application/problem+json": {}},
        },
    },
)
async def import_shelters_file(
    settings: SettingsDep,
    who: Writer,
    file: Annotated[UploadFile, File(description="The CSV or GeoJSON file")],
    format: Annotated[
        str | None, Form(description="csv or geojson; by default taken from the file name's extension")
    ] = None,
):
    try:
        fmt = detect_format(file.filename, format)
    except ImportFormatError as exc:
        raise UnsupportedMediaType(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from exc
    data = await file.read()
    # Parsing, validating and the database work all block: keep them off the event loop.
    result = await run_in_threadpool(_run_import, settings.database_url, data, fmt, who.name)
    if not result.ok:
        raise InvalidInput(result.message, report=result.report())
    return OrjsonResponse(result.summary())


# ---------------------------------------------------------------------------------------------
# The registry


@router.post(
    "/shelters",
    status_code=201,
    summary="Register a shelter",
    description="`capacity` defaults to floor(effective_area_m2 ÷ the class's m² per person); give one "
    "of the two. `district_code` is derived from the site when not given. The response's "
    "`warnings` flag an effective area below the class's minimum (2,000 m², national standard).",
    responses={201: FEATURE[200], 409: {"description": "The code is already registered"}},
)
async def create_shelter(body: ShelterCreate, pool: PoolDep, who: Writer):
    _check_figures(body.total_area_m2, body.effective_area_m2, body.capacity)
    geometry = body.geometry.to_json()
    async with pool.connection() as conn, conn.transaction():
        cls = await _class(conn, body.shelter_class)
        await check_inside_city(conn, geometry)
        if body.district_code is not None:
            await check_district(conn, body.district_code)
        capacity = body.capacity
        if capacity is None:
            capacity = default_capacity(body.effective_area_m2, cls["m2_per_person"])
        cols = {
            "code": body.code,
            "name": body.name,
            "class": body.shelter_class,
            "total_area_m2": body.total_area_m2,
            "effective_area_m2": body.effective_area_m2,
            "capacity": capacity,
            "status": _receiving_status(body.status, 0, capacity),
            "facilities": Jsonb(body.facilities),
            "address": body.address,
            "district_code": body.district_code or await district_of(conn, geometry),
            "managing_unit": body.managing_unit,
            "created_by": who.name,
            "updated_by": who.name,
        }
        # A clear 409 naming the field; the unique index still guards a concurrent create.
        cur = await conn.execute("SELECT 1 FROM shelters WHERE code = %s", (body.code,))
        if await cur.fetchone() is not None:
            raise Conflict(
                f"A shelter with code '{body.code}' is already registered; PATCH it instead.",
                errors=[{"field": "code", "message": "already registered"}],
            )
        stmt = pgsql.SQL("INSERT INTO shelters ({}, geom) VALUES ({}, {}) RETURNING id").format(
            pgsql.SQL(", ").join(map(pgsql.Identifier, cols)),
            pgsql.SQL(", ").join(map(pgsql.Placeholder, cols)),
            _GEOM,
        )
        cur = await conn.execute(stmt, {**cols, "geometry": geometry})
        shelter_id = (await cur.fetchone())["id"]
        return await _feature_response(conn, shelter_id, status=201)


@router.get("/shelters/{shelter_id}", summary="One shelter as a GeoJSON Feature", responses=FEATURE)
async def get_shelter(shelter_id: int, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        return await _feature_response(conn, shelter_id)


async def _lock(conn: AsyncConnection, shelter_id: int) -> dict:
    """The shelter's row (with its class's figures), locked: concurrent writers queue, not race."""
    cur = await conn.execute(
        "SELECT s.id, s.version, s.class, s.total_area_m2, s.effective_area_m2, s.capacity, s.occupancy,"
        " s.status, ST_AsGeoJSON(s.geom) AS geometry, k.m2_per_person"
        " FROM shelters s JOIN shelter_classes k ON k.class = s.class WHERE s.id = %s FOR UPDATE OF s",
        (shelter_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No shelter with id {shelter_id}.")
    return row


@router.patch(
    "/shelters/{shelter_id}",
    summary="Change a shelter (If-Match with its ETag)",
    description="Only the fields sent change. `capacity: null` derives it from the effective area again; "
    "a new effective area or class also re-derives a capacity that was the derived figure, and keeps "
    "one that was set by hand. `status`: standby, open or closed (`full` follows occupancy); standby and "
    "closed need the shelter empty, and the capacity cannot go below the people checked in (409). "
    "A new site re-derives the district unless `district_code` is sent.",
    responses={**FEATURE, **IF_MATCH_ERRORS, **OCCUPIED},
)
async def update_shelter(
    shelter_id: int,
    body: ShelterUpdate,
    pool: PoolDep,
    who: Writer,
    if_match: Annotated[str | None, Header(description="ETag of the version you read")] = None,
):
    expected = parse_if_match(if_match, required=True)
    sent = body.model_dump(exclude_unset=True)
    async with pool.connection() as conn, conn.transaction():
        row = await _lock(conn, shelter_id)
        check_version(row["version"], expected)
        if not sent:
            return await _feature_response(conn, shelter_id)
        cols: dict = {
            k: v
            for k, v in sent.items()
            if k in ("name", "total_area_m2", "effective_area_m2", "address", "managing_unit")
        }
        cls = await _class(conn, body.shelter_class) if "shelter_class" in sent else row
        if "shelter_class" in sent:
            cols["class"] = body.shelter_class
        total = sent.get("total_area_m2", row["total_area_m2"])
        effective = sent.get("effective_area_m2", row["effective_area_m2"])
        figures_changed = "effective_area_m2" in sent or "shelter_class" in sent
        was_derived = row["effective_area_m2"] is not None and row["capacity"] == default_capacity(
            row["effective_area_m2"], row["m2_per_person"]
        )
        if "capacity" in sent:
            capacity = body.capacity
        elif figures_changed and was_derived:
            capacity = None  # it followed the area before; it follows the new figures
        else:
            capacity = row["capacity"]
        _check_figures(total, effective, capacity)
        if capacity is None:
            capacity = default_capacity(effective, cls["m2_per_person"])
        if capacity < row["occupancy"]:
            raise Conflict(
                f"The shelter holds {row['occupancy']} people; the capacity cannot go below that"
                f" ({capacity}).",
                occupancy=row["occupancy"],
                errors=[{"field": "capacity", "message": f"below the occupancy ({row['occupancy']})"}],
            )
        cols["capacity"] = capacity
        status = sent.get("status", row["status"])
        if "status" in sent and status in ("standby", "closed") and row["status"] != status:
            _check_empty(row, status)
        cols["status"] = _receiving_status(status, row["occupancy"], capacity)
        if "facilities" in sent:
            cols["facilities"] = Jsonb(body.facilities)
        geometry = body.geometry.to_json() if body.geometry is not None else None
        if geometry is not None:
            await check_inside_city(conn, geometry)
        if sent.get("district_code") is not None:
            await check_district(conn, sent["district_code"])
            cols["district_code"] = sent["district_code"]
        elif "district_code" in sent or geometry is not None:
            cols["district_code"] = await district_of(conn, geometry or row["geometry"])
        sets = [pgsql.SQL("{} = {}").format(pgsql.Identifier(k), pgsql.Placeholder(k)) for k in cols]
        if geometry is not None:
            sets.append(pgsql.SQL("geom = {}").format(_GEOM))
        sets.append(pgsql.SQL("version = version + 1, updated_at = now(), updated_by = %(who)s"))
        await conn.execute(
            pgsql.SQL("UPDATE shelters SET {} WHERE id = %(id)s").format(pgsql.SQL(", ").join(sets)),
            {**cols, "geometry": geometry, "who": who.name, "id": shelter_id},
        )
        return await _feature_response(conn, shelter_id)


@router.delete(
    "/shelters/{shelter_id}",
    summary="Close a shelter (soft delete: kept, with its history); If-Match optional",
    description="Sets the status to closed (it stops counting in coverage and nearest). Not while "
    "people are checked in (409). Closing a closed shelter changes nothing.",
    responses={**FEATURE, 412: IF_MATCH_ERRORS[412], **OCCUPIED},
)
async def close_shelter(
    shelter_id: int,
    pool: PoolDep,
    who: Writer,
    if_match: Annotated[str | None, Header()] = None,
):
    expected = parse_if_match(if_match, required=False)
    async with pool.connection() as conn, conn.transaction():
        row = await _lock(conn, shelter_id)
        check_version(row["version"], expected)
        if row["status"] != "closed":
            _check_empty(row, "closed")
            await conn.execute(
                "UPDATE shelters SET status = 'closed', version = version + 1, updated_at = now(),"
                " updated_by = %s WHERE id = %s",
                (who.name, shelter_id),
            )
        return await _feature_response(conn, shelter_id)


# One statement: the row lock is taken and released inside it, the bounds are checked against
# the row as it is when locked (a concurrent check-in that committed first is seen: READ COMMITTED
# re-evaluates the WHERE on the newest row version), and `full`/`open` follow in the same write.
# No version bump, so no history row and no new ETag: occupancy is live state, not a registry edit.
OCCUPANCY_SQL = """
UPDATE shelters
SET occupancy = occupancy + %(delta)s,
    status = CASE WHEN occupancy + %(delta)s >= capacity THEN 'full' ELSE 'open' END
WHERE id = %(id)s AND status IN ('open', 'full') AND occupancy + %(delta)s BETWEEN 0 AND capacity
RETURNING id, code, occupancy, capacity, capacity - occupancy AS free, status, version
"""


@router.post(
    "/shelters/{shelter_id}/occupancy",
    response_model=OccupancyState,
    summary="Check people in (+delta) or out (−delta) at an open shelter; concurrent check-ins never lose "
    "a count",
    description=f"For grid workers, operators and admins (the `field` right). |delta| ≤ {MAX_DELTA:,}, not "
    "0. One atomic update: the shelter turns `full` when occupancy reaches capacity and `open` again "
    "below it. 409 when there is not enough room (`free` says how many places are left), when the count "
    "would go below zero (`occupancy`), or when the shelter is standby or closed (open it first: PATCH "
    "status open). The shelter's version and ETag do not change.",
    responses={409: {"description": "Not enough room, below zero, or the shelter is not open"}},
)
async def change_occupancy(shelter_id: int, body: OccupancyChange, pool: PoolDep, _: FieldWorker):
    async with pool.connection() as conn:
        cur = await conn.execute(OCCUPANCY_SQL, {"delta": body.delta, "id": shelter_id})
        row = await cur.fetchone()
        if row is not None:
            return OrjsonResponse(row, headers={"ETag": etag(row["version"])})
        # Refused: say why, from the row as it is now.
        cur = await conn.execute(
            "SELECT status, occupancy, capacity FROM shelters WHERE id = %s", (shelter_id,)
        )
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


@router.get("/shelters", summary="Search shelters (GeoJSON, paged by id)", responses=COLLECTION)
async def list_shelters(
    request: Request,
    pool: PoolDep,
    _: Reader,
    bbox: BBox,
    page: PageDep,
    shelter_class: Annotated[
        str | None, Query(alias="class", max_length=32, description="emergency, fixed or central")
    ] = None,
    status: Status | None = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="District code")] = None,
    min_free: Annotated[
        int | None, Query(ge=0, le=10_000_000, description="At least this many free places (not closed)")
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="Text in name, code, address or managing unit"),
    ] = None,
):
    params = {
        "bbox": bbox,
        "class": shelter_class,
        "status": status,
        "district": district,
        "min_free": min_free,
        "q": f"%{q}%" if q else None,
        "limit": page.limit,
        "offset": page.offset,
    }
    async with pool.connection() as conn:
        cur = await conn.execute(sql("shelter_search"), params)
        found = await cur.fetchone()
        rows = await _features(conn, list(found["ids"])) if found["ids"] else []
    return paged_collection(
        request,
        offset=page.offset,
        limit=page.limit,
        matched=found["matched"],
        features=[r["feature"] for r in rows],
    )


@router.get(
    "/shelters/{shelter_id}/history",
    response_model=list[HistoryEntry],
    summary="Every version of a shelter: who, when, which fields changed from what to what",
    description="Check-ins are not versions (they change occupancy alone); a version shows the "
    "occupancy as it was when the record was edited.",
)
async def shelter_history(shelter_id: int, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM shelters WHERE id = %s", (shelter_id,))
        if await cur.fetchone() is None:
            raise NotFound(f"No shelter with id {shelter_id}.")
        cur = await conn.execute(
            "SELECT version, at, by, op, changes FROM shelter_history WHERE shelter_id = %s ORDER BY version",
            (shelter_id,),
        )
        rows = await cur.fetchall()
    return OrjsonResponse(rows)
