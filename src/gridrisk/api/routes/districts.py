"""The district administrative layer as GeoJSON."""

from __future__ import annotations

from fastapi import APIRouter

from gridrisk.api.deps import PoolDep, Reader
from gridrisk.api.geojson import GEOJSON, raw_json
from gridrisk.db.sql_files import sql

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
