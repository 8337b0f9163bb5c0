"""The risk-source registry: create, read, update (If-Match), close, search and history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from psycopg import AsyncConnection
from psycopg import sql as pgsql

from gridrisk.api.deps import PoolDep, Reader, Writer
from gridrisk.api.etags import check_version, etag, parse_if_match
from gridrisk.api.geojson import GEOJSON, feature_collection, paged_collection, raw_json
from gridrisk.api.params import BBox, PageDep
from gridrisk.api.registry import check_inside_city
from gridrisk.api.responses import OrjsonResponse
from gridrisk.db.sql_files import sql
from gridrisk.errors import InvalidInput, NotFound
from gridrisk.models.risk_sources import (
    DirectAssessment,
    HistoryEntry,
    RiskSourceCreate,
    RiskSourcePublic,
    RiskSourceUpdate,
)

router = APIRouter(tags=["risk sources"])

FEATURE = {200: {"content": {GEOJSON: {}}, "model": RiskSourcePublic, "description": "The risk source"}}


async def _features(conn: AsyncConnection, ids: list[int]) -> list[dict]:
    cur = await conn.execute(sql("risk_source_feature"), {"ids": ids})
    return await cur.fetchall()


async def _feature_response(conn: AsyncConnection, source_id: int, status: int = 200) -> Response:
    rows = await _features(conn, [source_id])
    if not rows:
        raise NotFound(f"No risk source with id {source_id}.")
    headers = {"ETag": etag(rows[0]["version"])}
    if status == 201:
        headers["Location"] = f"/risk-sources/{source_id}"
    return (
        raw_json(rows[0]["feature"], headers=headers)
        if status == 200
        else Response(rows[0]["feature"].encode(), status_code=status, media_type=GEOJSON, headers=headers)
    )


async def _check_category(conn: AsyncConnection, category: str) -> None:
    cur = await conn.execute("SELECT 1 FROM risk_categories WHERE code = %s", (category,))
    if await cur.fetchone() is None:
        cur = await conn.execute("SELECT string_agg(code, ', ' ORDER BY code) AS codes FROM risk_categories")
        known = (await cur.fetchone())["codes"]
        raise InvalidInput(
            f"Unknown category '{category}'. Known categories: {known}.",
            errors=[{"field": "category", "message": f"unknown category; one of {known}"}],
        )


def _assessment_columns(assessment, override) -> dict:
    """Columns for an assessment; the score and level are left to the database to compute."""
    cols = {"method": assessment.method, "l": None, "e": None, "c": None, "s": None}
    if assessment.method == "LEC":
        cols.update(l=assessment.L, e=assessment.E, c=assessment.C)
    elif assessment.method == "LS":
        cols.update(l=assessment.L, s=assessment.S)
    if isinstance(assessment, DirectAssessment):
        cols.update(override_level=assessment.level, override_reason=assessment.reason)
    elif override is not None:
        cols.update(override_level=override.level, override_reason=override.reason)
    else:
        cols.update(override_level=None, override_reason=None)
    return cols


@router.post(
    "/risk-sources",
    status_code=201,
    summary="Register a risk source; its cells are recoloured before this answers",
    responses={201: FEATURE[200], 409: {"description": "The code or plate is already registered"}},
)
async def create_risk_source(body: RiskSourceCreate, pool: PoolDep, who: Writer):
    geometry = body.geometry.to_json()
    async with pool.connection() as conn, conn.transaction():
        await _check_category(conn, body.category)
        await check_inside_city(conn, geometry)
        cols = {
            "code": body.code,
            "name": body.name,
            "category": body.category,
            "address": body.address,
            "plate_code": body.plate_code,
            "enterprise": body.enterprise,
            "department": body.department,
            "status": body.status,
            "created_by": who.name,
            "updated_by": who.name,
            **_assessment_columns(body.assessment, body.override),
        }
        names = [pgsql.Identifier(k) for k in cols] + [pgsql.Identifier("geom")]
        values = [pgsql.Placeholder(k) for k in cols] + [
            pgsql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), 4326)").format(pgsql.Placeholder("geometry"))
        ]
        stmt = pgsql.SQL("INSERT INTO risk_sources ({}) VALUES ({}) RETURNING id").format(
            pgsql.SQL(", ").join(names), pgsql.SQL(", ").join(values)
        )
        cur = await conn.execute(stmt, {**cols, "geometry": geometry})
        source_id = (await cur.fetchone())["id"]
        return await _feature_response(conn, source_id, status=201)


@router.get("/risk-sources/{source_id}", summary="One risk source as a GeoJSON Feature", responses=FEATURE)
async def get_risk_source(source_id: int, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        return await _feature_response(conn, source_id)


@router.patch(
    "/risk-sources/{source_id}",
    summary="Change a risk source (If-Match with its ETag); its cells are recoloured before this answers",
    responses={**FEATURE, 412: {"description": "Stale If-Match"}, 428: {"description": "If-Match missing"}},
)
async def update_risk_source(
    source_id: int,
    body: RiskSourceUpdate,
    pool: PoolDep,
    who: Writer,
    if_match: Annotated[str | None, Header(description="ETag of the version you read")] = None,
):
    expected = parse_if_match(if_match, required=True)
    sent = body.model_dump(exclude_unset=True)
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT version, method FROM risk_sources WHERE id = %s FOR UPDATE", (source_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"No risk source with id {source_id}.")
        check_version(row["version"], expected)
        cols: dict = {k: v for k, v in sent.items() if k in _PLAIN_FIELDS}
        if "category" in sent:
            await _check_category(conn, body.category)
        if body.geometry is not None:
            cols["geometry"] = body.geometry.to_json()
            await check_inside_city(conn, cols["geometry"])
        if "assessment" in sent and body.assessment is not None:
            cols.update(_assessment_columns(body.assessment, body.override))
        elif "override" in sent:
            if row["method"] == "direct":
                raise InvalidInput(
                    "This source is assessed directly; change its assessment instead of overriding it.",
                    errors=[{"field": "override", "message": "not applicable to a direct assessment"}],
                )
            cols["override_level"] = body.override.level if body.override else None
            cols["override_reason"] = body.override.reason if body.override else None
        sets = [
            pgsql.SQL("{} = {}").format(
                pgsql.Identifier("geom"),
                pgsql.SQL("ST_SetSRID(ST_GeomFromGeoJSON({}), 4326)").format(pgsql.Placeholder("geometry")),
            )
            if k == "geometry"
            else pgsql.SQL("{} = {}").format(pgsql.Identifier(k), pgsql.Placeholder(k))
            for k in cols
        ]
        sets += [pgsql.SQL("version = version + 1, updated_at = now(), updated_by = %(who)s")]
        await conn.execute(
            pgsql.SQL("UPDATE risk_sources SET {} WHERE id = %(id)s").format(pgsql.SQL(", ").join(sets)),
            {**cols, "who": who.name, "id": source_id},
        )
        return await _feature_response(conn, source_id)


_PLAIN_FIELDS = {"name", "category", "address", "plate_code", "enterprise", "department", "status"}


@router.delete(
    "/risk-sources/{source_id}",
    summary="Close a risk source (soft delete: kept, with its history); If-Match optional",
    responses=FEATURE,
)
async def close_risk_source(
    source_id: int,
    pool: PoolDep,
    who: Writer,
    if_match: Annotated[str | None, Header()] = None,
):
    expected = parse_if_match(if_match, required=False)
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT version, status FROM risk_sources WHERE id = %s FOR UPDATE", (source_id,)
        )
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"No risk source with id {source_id}.")
        check_version(row["version"], expected)
        if row["status"] != "closed":
            await conn.execute(
                "UPDATE risk_sources SET status = 'closed', version = version + 1, updated_at = now(),"
                " updated_by = %s WHERE id = %s",
                (who.name, source_id),
            )
        return await _feature_response(conn, source_id)


@router.get(
    "/risk-sources",
    summary="Search risk sources (GeoJSON, paged); with layer+cell+at, the cell's sources as they were",
    responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection, paged"}},
)
async def list_risk_sources(
    request: Request,
    pool: PoolDep,
    _: Reader,
    bbox: BBox,
    page: PageDep,
    layer: Annotated[str | None, Query(description="With `cell`: the layer of the cell")] = None,
    cell: Annotated[str | None, Query(description="A cell code: sources lying in it")] = None,
    category: Annotated[str | None, Query(max_length=64)] = None,
    level: Literal["red", "orange", "yellow", "blue"] | None = None,
    status: Literal["active", "suspended", "closed"] | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=100, description="Text in name/code/address")
    ] = None,
    at: Annotated[
        datetime | None, Query(description="With layer+cell: the sources as of this moment")
    ] = None,
):
    async with pool.connection() as conn:
        cell_id = None
        if (layer is None) != (cell is None):
            raise InvalidInput(
                "Give both `layer` and `cell` (a cell code of that layer), or neither.",
                errors=[{"field": "cell" if cell is None else "layer", "message": "required together"}],
            )
        if cell is not None:
            cur = await conn.execute("SELECT id FROM cells WHERE layer = %s AND code = %s", (layer, cell))
            found = await cur.fetchone()
            if found is None:
                raise NotFound(f"No cell '{cell}' in layer '{layer}'.")
            cell_id = found["id"]
        if at is not None:
            if cell_id is None:
                raise InvalidInput(
                    "`at` needs `layer` and `cell`: the history is read per cell.",
                    errors=[{"field": "at", "message": "needs layer and cell"}],
                )
            cur = await conn.execute(sql("risk_sources_at"), {"at": at, "cell_id": cell_id})
            rows = await cur.fetchall()
            body = "[" + ",".join(r["feature"] for r in rows) + "]"
            extra = b'"numberMatched":%d,"numberReturned":%d,' % (len(rows), len(rows))
            return feature_collection(body, extra=extra)
        params = {
            "bbox": bbox,
            "category": category,
            "level": level,
            "status": status,
            "q": f"%{q}%" if q else None,
            "cell_id": cell_id,
            "limit": page.limit,
            "offset": page.offset,
        }
        cur = await conn.execute(sql("risk_sources_search"), params)
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
    "/risk-sources/{source_id}/history",
    response_model=list[HistoryEntry],
    summary="Every version of a risk source: who, when, which fields changed from what to what",
)
async def risk_source_history(source_id: int, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT 1 FROM risk_sources WHERE id = %s", (source_id,))
        if await cur.fetchone() is None:
            raise NotFound(f"No risk source with id {source_id}.")
        cur = await conn.execute(
            "SELECT version, at, by, op, changes FROM risk_source_history"
            " WHERE source_id = %s ORDER BY version",
            (source_id,),
        )
        rows = await cur.fetchall()
    return OrjsonResponse(rows)
