"""The city: its profile, and its district administrative layer as GeoJSON."""

from __future__ import annotations

from fastapi import APIRouter

from gridrisk.api.deps import PoolDep, Reader
from gridrisk.api.geojson import GEOJSON, raw_json
from gridrisk.db.sql_files import sql
from gridrisk.models.layers import CityPublic

router = APIRouter(tags=["layers"])


@router.get(
    "/districts",
    summary="The districts as a GeoJSON FeatureCollection (WGS 84)",
    responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection of districts"}},
)
async def list_districts(pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        cur = await conn.execute(sql("districts_geojson"))
        row = await cur.fetchone()
    return raw_json(row["body"])


@router.get("/city", response_model=CityPublic, summary="The city: names, metric CRS, bounds and centre")
async def city(pool: PoolDep, _: Reader) -> CityPublic:
    async with pool.connection() as conn:
        cur = await conn.execute(sql("city_document"))
        row = await cur.fetchone()
    return CityPublic(**row)
