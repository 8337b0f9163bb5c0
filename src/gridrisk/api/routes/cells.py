"""Which cell am I in: one point (GET) or a GPS trace of up to 10,000 points (POST)."""

from __future__ import annotations

from fastapi import APIRouter

from gridrisk.api.deps import PoolDep, Reader
from gridrisk.api.geojson import raw_json
from gridrisk.api.params import Lat, Lon
from gridrisk.db.sql_files import sql
from gridrisk.errors import InvalidInput, NotFound, PayloadTooLarge
from gridrisk.models.layers import CellsAtBatch, CellsAtBatchPublic, CellsAtPublic

router = APIRouter(tags=["cells"])
MAX_POINTS = 10_000

EDGE_RULE = (
    "A point on a shared edge or vertex touches several cells; the one with the smallest code "
    "(in byte order) is returned, on every call."
)


async def lookup(pool, lons: list[float], lats: list[float]) -> list[dict]:
    """Resolve points to their cells in one round trip; rows in input order, JSON built in SQL."""
    async with pool.connection() as conn:
        cur = await conn.execute(sql("cells_at"), {"lons": lons, "lats": lats}, prepare=True)
        return await cur.fetchall()


@router.get(
    "/cells/at",
    response_model=CellsAtPublic,
    summary="Which cell am I in: the containing cell of every layer at a point",
    description=EDGE_RULE,
    responses={
        404: {"description": "The point is outside the city", "content": {"application/problem+json": {}}}
    },
)
async def cells_at(lon: Lon, lat: Lat, pool: PoolDep, _: Reader):
    (row,) = await lookup(pool, [lon], [lat])
    if not row["inside_city"] and not row["found"]:
        raise NotFound(f"The point ({lon}, {lat}) is outside the city; no cell contains it.")
    return raw_json(row["body"], media_type="application/json")


@router.post(
    "/cells/at",
    response_model=CellsAtBatchPublic,
    summary="Which cell for each of up to 10,000 points (a GPS trace), in order",
    description=EDGE_RULE + " Points outside the city answer inside_city=false with no cells.",
    responses={413: {"description": "More than 10,000 points", "content": {"application/problem+json": {}}}},
)
async def cells_at_batch(body: CellsAtBatch, pool: PoolDep, _: Reader):
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
    rows = await lookup(pool, [p[0] for p in points], [p[1] for p in points]) if points else []
    body = b'{"count":%d,"results":[' % len(rows) + b",".join(r["body"].encode() for r in rows) + b"]}"
    return raw_json(body, media_type="application/json")
