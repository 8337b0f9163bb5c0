"""Hazard points (隐患点): registry, lifecycle transitions, history, search and statistics.

Writes touch only `hazard_points`; the table's statement triggers reassign the point to its cells
and recolour them in the same transaction, so every answer already reflects the new map.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from psycopg import AsyncConnection
from psycopg import sql as pgsql

from gridrisk.api.deps import PoolDep, Reader, Writer
from gridrisk.api.etags import check_version, etag, parse_if_match
from gridrisk.api.geojson import GEOJSON, paged_collection, raw_json
from gridrisk.api.params import BBox, PageDep
from gridrisk.api.registry import check_district, check_inside_city, district_of
from gridrisk.api.responses import OrjsonResponse
from gridrisk.db.sql_files import sql
from gridrisk.errors import Conflict, InvalidInput, NotFound
from gridrisk.models.hazard_points import (
    PROPERTY_VALUE_DOC,
    REOPEN_FROM,
    TRANSITIONS,
    HazardPointCreate,
    HazardPointPublic,
    HazardPointUpdate,
    HazardStats,
    HistoryEntry,
    Kind,
    Level,
    Status,
    Transition,
)

router = APIRouter(tags=["hazard points"])

FEATURE = {
    200: {
        "content": {GEOJSON: {}},
        "model": HazardPointPublic,
        "description": "The hazard point as a GeoJSON Feature. `property_value` is in 10,000 yuan (万元); "
        "`cells` maps each layer to the codes of the cells it lies in; `status_dates` holds when each "
        "status was entered; `on_map` says whether it counts on the four-colour map.",
    }
}
IF_MATCH_ERRORS = {
    412: {"description": "Stale If-Match: the point changed since it was read (current ETag returned)"},
    428: {"description": "If-Match missing"},
}
TRANSITION_DOC = "; ".join(f"{src} → {', '.join(dst)}" for src, dst in TRANSITIONS.items())


async def _features(conn: AsyncConnection, ids: list[int]) -> list[dict]:
    """The Features (JSON text built by the database) and versions of IDS, in that order."""
    cur = await conn.execute(sql("hazard_feature"), {"ids": ids})
    return await cur.fetchall()


async def _feature_response(conn: AsyncConnection, hazard_id: int, status: int = 200) -> Response:
    """The point as read inside the caller's transaction (so after the triggers), with its ETag."""
    rows = await _features(conn, [hazard_id])
    if not rows:
        raise NotFound(f"No hazard point with id {hazard_id}.")
    headers = {"ETag": etag(rows[0]["version"])}
    if status == 201:
        headers["Location"] = f"/hazard-points/{hazard_id}"
        return Response(rows[0]["feature"].encode(), status_code=201, media_type=GEOJSON, headers=headers)
    return raw_json(rows[0]["feature"], headers=headers)


async def _lock(conn: AsyncConnection, hazard_id: int) -> dict:
    """The point's row, locked for this transaction, so concurrent writers queue instead of racing."""
    cur = await conn.execute(
        "SELECT version, status, ST_AsGeoJSON(geom) AS geometry FROM hazard_points WHERE id = %s FOR UPDATE",
        (hazard_id,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No hazard point with id {hazard_id}.")
    return row


_GEOM = pgsql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), 4326)").format(pgsql.Placeholder("geometry"))


@router.post(
    "/hazard-points",
    status_code=201,
    summary="Register a hazard point; its cells are recoloured before this answers",
    description=f"`property_value`: {PROPERTY_VALUE_DOC}. `district_code` is derived from the geometry "
    "(the district holding the point) when not given. `status` is the initial state (default identified; "
    "register an existing point as it stands); later changes go through the transitions endpoint.",
    responses={201: FEATURE[200], 409: {"description": "The code is already registered"}},
)
async def create_hazard_point(body: HazardPointCreate, pool: PoolDep, who: Writer):
    geometry = body.geometry.to_json()
    async with pool.connection() as conn, conn.transaction():
        await check_inside_city(conn, geometry)
        if body.district_code is not None:
            await check_district(conn, body.district_code)
        district = body.district_code or await district_of(conn, geometry)
        cols = body.model_dump(exclude={"geometry", "district_code"})
        cols.update(district_code=district, created_by=who.name, updated_by=who.name)
        stmt = pgsql.SQL("INSERT INTO hazard_points ({}, geom) VALUES ({}, {}) RETURNING id").format(
            pgsql.SQL(", ").join(map(pgsql.Identifier, cols)),
            pgsql.SQL(", ").join(map(pgsql.Placeholder, cols)),
            _GEOM,
        )
        cur = await conn.execute(stmt, {**cols, "geometry": geometry})
        hazard_id = (await cur.fetchone())["id"]
        return await _feature_response(conn, hazard_id, status=201)


@router.get(
    "/hazard-points/stats",
    response_model=HazardStats,
    summary="Counts by kind, status and level and the remediation rate: the city first, then per district",
    description="The remediation rate is remediated ÷ (total − closed). `district` narrows the district "
    "list; the city totals are always city-wide.",
)
async def hazard_stats(
    pool: PoolDep,
    _: Reader,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="Only this district")] = None,
):
    async with pool.connection() as conn:
        if district is not None:
            cur = await conn.execute(
                "SELECT 1 FROM cells WHERE layer = 'district' AND code = %s", (district,)
            )
            if await cur.fetchone() is None:
                raise NotFound(f"No district '{district}'.")
        cur = await conn.execute(sql("hazard_stats"), {"district": district})
        body = (await cur.fetchone())["stats"]
    return raw_json(body, media_type="application/json")


@router.get("/hazard-points/{hazard_id}", summary="One hazard point as a GeoJSON Feature", responses=FEATURE)
async def get_hazard_point(hazard_id: int, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        return await _feature_response(conn, hazard_id)


@router.patch(
    "/hazard-points/{hazard_id}",
    summary="Change a hazard point's fields (If-Match with its ETag); its cells are recoloured before this "
    "answers",
    description="Only the fields sent change. The status is not patched: use "
    "POST /hazard-points/{id}/transitions. A new geometry re-derives the district unless "
    "`district_code` is sent too.",
    responses={**FEATURE, **IF_MATCH_ERRORS},
)
async def update_hazard_point(
    hazard_id: int,
    body: HazardPointUpdate,
    pool: PoolDep,
    who: Writer,
    if_match: Annotated[str | None, Header(description="ETag of the version you read")] = None,
):
    sent = body.model_dump(exclude_unset=True)
    if "status" in sent:
        raise InvalidInput(
            f"The status moves through POST /hazard-points/{hazard_id}/transitions (with a note), "
            "not through PATCH.",
            errors=[{"field": "status", "message": "use the transitions endpoint"}],
        )
    expected = parse_if_match(if_match, required=True)
    async with pool.connection() as conn, conn.transaction():
        row = await _lock(conn, hazard_id)
        check_version(row["version"], expected)
        if not sent:
            return await _feature_response(conn, hazard_id)
        cols = {k: v for k, v in sent.items() if k != "geometry"}
        geometry = body.geometry.to_json() if body.geometry is not None else None
        if geometry is not None:
            await check_inside_city(conn, geometry)
        if cols.get("district_code") is not None:
            await check_district(conn, cols["district_code"])
        elif "district_code" in sent or geometry is not None:
            cols["district_code"] = await district_of(conn, geometry or row["geometry"])
        sets = [pgsql.SQL("{} = {}").format(pgsql.Identifier(k), pgsql.Placeholder(k)) for k in cols]
        if geometry is not None:
            sets.append(pgsql.SQL("geom = {}").format(_GEOM))
        sets.append(pgsql.SQL("version = version + 1, updated_at = now(), updated_by = %(who)s"))
        await conn.execute(
            pgsql.SQL("UPDATE hazard_points SET {} WHERE id = %(id)s").format(pgsql.SQL(", ").join(sets)),
            {**cols, "geometry": geometry, "who": who.name, "id": hazard_id},
        )
        return await _feature_response(conn, hazard_id)


async def _transition(
    conn: AsyncConnection, hazard_id: int, row: dict, to: str, note: str | None, by: str | None, who: str
) -> None:
    """Apply one status change, or raise 409 naming the states allowed from here."""
    current = row["status"]
    allowed = list(TRANSITIONS[current])
    if to not in allowed:
        raise Conflict(
            f"A hazard point cannot go from '{current}' to '{to}'. From '{current}' it may go to: "
            f"{', '.join(allowed)}.",
            current=current,
            requested=to,
            allowed=allowed,
        )
    if to == "identified" and current in REOPEN_FROM and not note:
        raise InvalidInput(
            "Reopening a hazard point needs a note saying why (e.g. the hazard recurred after heavy rain).",
            errors=[{"field": "note", "message": "required to reopen"}],
        )
    # One UPDATE: the BEFORE trigger stamps status_dates[to], the AFTER triggers recolour the
    # cells (a remediated point stops counting) and write the history row annotated next.
    await conn.execute(
        "UPDATE hazard_points SET status = %s, version = version + 1, updated_at = now(), updated_by = %s"
        " WHERE id = %s",
        (to, who, hazard_id),
    )
    await conn.execute(
        sql("hazard_transition_note"),
        {"id": hazard_id, "version": row["version"] + 1, "note": note, "by": by},
    )


@router.post(
    "/hazard-points/{hazard_id}/transitions",
    summary="Move a hazard point through its lifecycle (If-Match); the map follows before this answers",
    description="Allowed transitions: "
    + TRANSITION_DOC
    + ". Moving to identified from remediated or closed is a reopen and needs a `note`. Any other move "
    "is a 409 whose `allowed` member lists the states reachable from the current one. The date each "
    "status is entered is stamped in `status_dates`; the note and `by` are kept in the history. "
    "Remediated and closed points stop counting on the four-colour map.",
    responses={
        **FEATURE,
        **IF_MATCH_ERRORS,
        409: {"description": "Not allowed from the current status; `allowed` lists the next states"},
    },
)
async def transition_hazard_point(
    hazard_id: int,
    body: Transition,
    pool: PoolDep,
    who: Writer,
    if_match: Annotated[str | None, Header(description="ETag of the version you read")] = None,
):
    expected = parse_if_match(if_match, required=True)
    async with pool.connection() as conn, conn.transaction():
        row = await _lock(conn, hazard_id)
        check_version(row["version"], expected)
        await _transition(conn, hazard_id, row, body.to, body.note, body.by, who.name)
        return await _feature_response(conn, hazard_id)


@router.delete(
    "/hazard-points/{hazard_id}",
    summary="Close a hazard point (soft delete: kept, with its history); If-Match optional",
    description="The same as the transition to `closed`; closing a closed point changes nothing.",
    responses={**FEATURE, 412: IF_MATCH_ERRORS[412]},
)
async def close_hazard_point(
    hazard_id: int,
    pool: PoolDep,
    who: Writer,
    if_match: Annotated[str | None, Header()] = None,
):
    expected = parse_if_match(if_match, required=False)
    async with pool.connection() as conn, conn.transaction():
        row = await _lock(conn, hazard_id)
        check_version(row["version"], expected)
        if row["status"] != "closed":
            await _transition(conn, hazard_id, row, "closed", None, None, who.name)
        return await _feature_response(conn, hazard_id)


@router.get(
    "/hazard-points",
    summary="Search hazard points (GeoJSON, paged by id)",
    responses={
        200: {"content": {GEOJSON: {}}, "description": "FeatureCollection with numberMatched and links"}
    },
)
async def list_hazard_points(
    request: Request,
    pool: PoolDep,
    _: Reader,
    bbox: BBox,
    page: PageDep,
    kind: Kind | None = None,
    status: Status | None = None,
    level: Level | None = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="District code")] = None,
    layer: Annotated[
        str | None, Query(max_length=64, description="With `cell`: the layer of the cell")
    ] = None,
    cell: Annotated[str | None, Query(max_length=64, description="A cell code: points lying in it")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1, max_length=100, description="Text in name, code, address or responsible person/unit"
        ),
    ] = None,
):
    if (layer is None) != (cell is None):
        raise InvalidInput(
            "Give both `layer` and `cell` (a cell code of that layer), or neither.",
            errors=[{"field": "cell" if cell is None else "layer", "message": "required together"}],
        )
    async with pool.connection() as conn:
        cell_id = None
        if cell is not None:
            cur = await conn.execute("SELECT id FROM cells WHERE layer = %s AND code = %s", (layer, cell))
            found = await cur.fetchone()
            if found is None:
                raise NotFound(f"No cell '{cell}' in layer '{layer}'.")
            cell_id = found["id"]
        params = {
            "bbox": bbox,
            "kind": kind,
            "status": status,
            "level": level,
            "district": district,
            "q": f"%{q}%" if q else None,
            "cell_id": cell_id,
            "limit": page.limit,
            "offset": page.offset,
        }
        cur = await conn.execute(sql("hazard_search"), params)
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
    "/hazard-points/{hazard_id}/history",
    response_model=list[HistoryEntry],
    summary="Every version of a hazard point: who, when, what changed; transitions with their note",
)
async def hazard_point_history(hazard_id: int, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM hazard_points WHERE id = %s", (hazard_id,))
        if await cur.fetchone() is None:
            raise NotFound(f"No hazard point with id {hazard_id}.")
        cur = await conn.execute(sql("hazard_history"), {"id": hazard_id})
        rows = await cur.fetchall()
    return OrjsonResponse(rows)
