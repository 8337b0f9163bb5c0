"""The four-colour map: the layer as GeoJSON (spooled), summaries, one cell, pins and thresholds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response
from starlette.concurrency import run_in_threadpool

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
from gridrisk.services.map_image import MAX_PIXELS, chinese_title, degrees_per_pixel, render_risk_map
from gridrisk.services.pins import map_cell, set_pin
from gridrisk.services.records import fetch_one, layer_or_404
from gridrisk.services.thresholds import LEVELS, change_thresholds, thresholds

router = APIRouter(tags=["risk map"])

At = Annotated[
    datetime | None, Query(description="The map as it was at this moment (ISO 8601), from history")
]
LayerName = Annotated[str, Path(description="A layer name, e.g. safety")]


@router.get(
    "/risk-map/thresholds",
    response_model=list[ThresholdsPublic],
    summary="The assessment thresholds in force (LEC and risk matrix)",
)
async def get_thresholds(pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        return OrjsonResponse(await thresholds(conn))


@router.put(
    "/risk-map/thresholds/{method}",
    response_model=ThresholdsPublic,
    summary="Change a method's thresholds (admin): recorded, every source re-assessed, the map recoloured",
)
async def put_thresholds(method: Literal["LEC", "LS"], body: ThresholdsUpdate, pool: PoolDep, who: Admin):
    new = {lvl: getattr(body, lvl).model_dump() for lvl in LEVELS}
    async with pool.connection() as conn:
        await change_thresholds(conn, method, new, body.reason, who.name)
        for entry in await thresholds(conn):
            if entry["method"] == method:
                return OrjsonResponse(entry)
    raise NotFound(f"No thresholds for method {method}.")


Width = Annotated[int, Query(ge=200, le=MAX_PIXELS, description="Picture width, pixels")]
Height = Annotated[int, Query(ge=200, le=MAX_PIXELS, description="Picture height, pixels")]
PNG = {200: {"content": {"image/png": {}}, "description": "The map as a PNG image"}}


@router.get(
    "/risk-map/{layer}.png",
    response_class=Response,
    responses=PNG,
    summary="The four-colour map of a layer as a picture: the city, a district or a bbox",
    description="A PNG with title, legend (cells per colour), scale bar, date (Beijing time) and north, "
    "drawn from the current map, or from the history with `at`. `district` frames one district; `bbox` "
    "(minLon,minLat,maxLon,maxLat) a box; neither, the whole layer.",
)
async def risk_map_png(
    layer: LayerName,
    pool: PoolDep,
    _: Reader,
    bbox: BBox,
    at: At = None,
    district: Annotated[str | None, Query(pattern=r"^\d{6}$", description="A district code")] = None,
    width: Width = 1600,
    height: Height = 1200,
):
    async with pool.connection() as conn:
        await layer_or_404(conn, layer)
        params = {"layer": layer, "bbox": bbox, "district": district, "at": at}
        frame = await fetch_one(conn, "map_image_frame", params)
        if district is not None and frame["district_name"] is None:
            raise NotFound(f"No district '{district}'; see GET /districts.")
        if frame["minx"] is None:
            raise NotFound(f"Layer '{layer}' has no cells to draw.")
        box = (frame["minx"], frame["miny"], frame["maxx"], frame["maxy"])
        cur = await conn.execute(
            sql("map_image_cells"), {**params, "tolerance": degrees_per_pixel(box, width, height) / 2}
        )
        cells = await cur.fetchall()
    where = frame["district_name"] or ""
    title = f"{frame['city']}{where} {chinese_title(frame['layer_title'])} 安全风险四色图"
    png = await run_in_threadpool(render_risk_map, cells, box, width=width, height=height, title=title, at=at)
    return Response(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.get(
    "/risk-map/{layer}",
    summary="The four-colour map of a layer as GeoJSON, built in the database",
    responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection of cells with colours"}},
)
async def risk_map(
    layer: LayerName, pool: PoolDep, settings: SettingsDep, _: Reader, bbox: BBox, at: At = None
):
    async with pool.connection() as conn:
        await layer_or_404(conn, layer)
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
        await layer_or_404(conn, layer)
        row = await fetch_one(conn, "risk_map_summary", {"layer": layer, "at": at})
    return raw_json(row["body"], media_type="application/json")


@router.get(
    "/risk-map/{layer}/cells/{code}",
    response_model=CellRiskPublic,
    summary="One cell's colour, computed colour, pin and counts",
)
async def risk_map_cell(layer: LayerName, code: str, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        return OrjsonResponse(await map_cell(conn, layer, code))


async def _pin(pool, layer: str, code: str, colour: str | None, reason: str, by: str) -> dict:
    async with pool.connection() as conn:
        return await set_pin(conn, layer, code, colour, reason, by)


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
