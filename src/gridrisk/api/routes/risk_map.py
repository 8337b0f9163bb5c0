"""The four-colour map: the layer as GeoJSON (spooled), summaries, one cell, pins and thresholds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Path, Query

from gridrisk.api.deps import Admin, PoolDep, Reader, SettingsDep, Writer
from gridrisk.api.geojson import GEOJSON, raw_json
from gridrisk.api.params import BBox
from gridrisk.api.responses import OrjsonResponse
from gridrisk.api.spool import spool_json_array, spool_response
from gridrisk.db.sql_files import sql
from gridrisk.errors import NotFound
from gridrisk.models.risk_map import (
    CellRiskPublic,
    PinCreate,
    RiskMapSummary,
    ThresholdsPublic,
    ThresholdsUpdate,
    Unpin,
)

router = APIRouter(tags=["risk map"])

At = Annotated[
    datetime | None, Query(description="The map as it was at this moment (ISO 8601), from history")
]
LayerName = Annotated[str, Path(description="A layer name, e.g. safety")]


async def _layer_or_404(conn, layer: str) -> None:
    cur = await conn.execute("SELECT 1 FROM layers WHERE name = %s", (layer,))
    if await cur.fetchone() is None:
        raise NotFound(f"No layer '{layer}'.")


@router.get(
    "/risk-map/thresholds",
    response_model=list[ThresholdsPublic],
    summary="The assessment thresholds in force (LEC and risk matrix)",
)
async def get_thresholds(pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT method, level, min_score, min_inclusive, updated_at, updated_by"
            " FROM assessment_thresholds ORDER BY method, min_score DESC"
        )
        rows = await cur.fetchall()
    out: dict[str, dict] = {}
    for r in rows:
        entry = out.setdefault(r["method"], {"method": r["method"], "updated_at": r["updated_at"]})
        entry[r["level"]] = {"min_score": r["min_score"], "min_inclusive": r["min_inclusive"]}
        if r["updated_at"] >= entry["updated_at"]:
            entry["updated_at"], entry["updated_by"] = r["updated_at"], r["updated_by"]
    return OrjsonResponse(list(out.values()))


@router.put(
    "/risk-map/thresholds/{method}",
    response_model=ThresholdsPublic,
    summary="Change a method's thresholds (admin): recorded, every source re-assessed, the map recoloured",
)
async def put_thresholds(method: Literal["LEC", "LS"], body: ThresholdsUpdate, pool: PoolDep, who: Admin):
    new = {lvl: getattr(body, lvl).model_dump() for lvl in ("red", "orange", "yellow")}
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            "SELECT level, min_score, min_inclusive FROM assessment_thresholds WHERE method = %s FOR UPDATE",
            (method,),
        )
        old = {
            r["level"]: {"min_score": r["min_score"], "min_inclusive": r["min_inclusive"]}
            for r in await cur.fetchall()
        }
        await conn.execute(
            "INSERT INTO threshold_changes (by, method, old, new, reason) VALUES (%s, %s, %s, %s, %s)",
            (who.name, method, orjson.dumps(old).decode(), orjson.dumps(new).decode(), body.reason),
        )
        for level, t in new.items():
            await conn.execute(
                "UPDATE assessment_thresholds SET min_score = %s, min_inclusive = %s, updated_at = now(),"
                " updated_by = %s WHERE method = %s AND level = %s",
                (t["min_score"], t["min_inclusive"], who.name, method, level),
            )
        # Re-assess every source of the method (the row trigger recomputes the level; the statement
        # trigger recolours the cells whose sources changed level) — in this same transaction.
        await conn.execute("UPDATE risk_sources SET method = method WHERE method = %s", (method,))
    return await get_thresholds_for(pool, method)


async def get_thresholds_for(pool, method: str):
    response = await get_thresholds(pool, None)
    for entry in orjson.loads(response.body):
        if entry["method"] == method:
            return OrjsonResponse(entry)
    raise NotFound(f"No thresholds for method {method}.")


@router.get(
    "/risk-map/{layer}",
    summary="The four-colour map of a layer as GeoJSON, built in the database",
    responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection of cells with colours"}},
)
async def risk_map(
    layer: LayerName, pool: PoolDep, settings: SettingsDep, _: Reader, bbox: BBox, at: At = None
):
    async with pool.connection() as conn:
        await _layer_or_404(conn, layer)
    # Spooled, not streamed from the cursor: the connection is back in the pool before the first
    # byte leaves, however slowly the client reads the 13 MB of a whole layer.
    spool, size = await spool_json_array(
        pool,
        settings,
        sql("risk_map_features"),
        {"layer": layer, "bbox": bbox, "at": at},
        head=b'{"type":"FeatureCollection","features":[',
        tail=b"]}",
    )
    return spool_response(spool, size, GEOJSON)


@router.get(
    "/risk-map/{layer}/summary",
    response_model=RiskMapSummary,
    summary="Cells per colour, city-wide and per district (now, or as of `at`)",
)
async def risk_map_summary(layer: LayerName, pool: PoolDep, _: Reader, at: At = None):
    async with pool.connection() as conn:
        await _layer_or_404(conn, layer)
        cur = await conn.execute(sql("risk_map_summary"), {"layer": layer, "at": at})
        row = await cur.fetchone()
    return raw_json(row["body"], media_type="application/json")


@router.get(
    "/risk-map/{layer}/cells/{code}",
    response_model=CellRiskPublic,
    summary="One cell's colour, computed colour, pin and counts",
)
async def risk_map_cell(layer: LayerName, code: str, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        return OrjsonResponse(await _cell(conn, layer, code))


async def _cell(conn, layer: str, code: str) -> dict:
    cur = await conn.execute(sql("risk_map_cell"), {"layer": layer, "code": code})
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No cell '{code}' in layer '{layer}'.")
    return row


async def _pin(pool, layer: str, code: str, colour: str | None, reason: str, by: str) -> dict:
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute("SELECT id FROM cells WHERE layer = %s AND code = %s", (layer, code))
        cell = await cur.fetchone()
        if cell is None:
            raise NotFound(f"No cell '{code}' in layer '{layer}'.")
        await conn.execute(
            sql("risk_map_pin"), {"cell_id": cell["id"], "colour": colour, "reason": reason, "by": by}
        )
        await conn.execute("SELECT pg_notify('gridrisk_events', '')")
        return await _cell(conn, layer, code)


@router.post(
    "/risk-map/{layer}/cells/{code}/pin",
    response_model=CellRiskPublic,
    summary="Pin a cell's colour by hand (recorded, with a reason); the computed colour is kept beside it",
)
async def pin_cell(layer: LayerName, code: str, body: PinCreate, pool: PoolDep, who: Writer):
    return OrjsonResponse(await _pin(pool, layer, code, body.colour, body.reason, who.name))


@router.post(
    "/risk-map/{layer}/cells/{code}/unpin",
    response_model=CellRiskPublic,
    summary="Remove a pin (recorded, with a reason): the cell shows its computed colour again",
)
async def unpin_cell(layer: LayerName, code: str, body: Unpin, pool: PoolDep, who: Writer):
    return OrjsonResponse(await _pin(pool, layer, code, None, body.reason, who.name))
