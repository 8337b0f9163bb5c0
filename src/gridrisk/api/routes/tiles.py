"""Vector tiles: /tiles/{collection}/{z}/{x}/{y}.mvt (MVT from ST_AsMVT) and TileJSON 3.0.0.

Tiles come from a per-worker cache that is never stale (see tiles/cache.py): an answer from the
cache first has the outbox reader apply the events committed before it, so a tile over a changed
cell or feature is rendered afresh. Clients revalidate (`Cache-Control: no-cache`) with the
content ETag and get 304 while nothing in the tile changed.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Path, Request, Response

from gridrisk.api.deps import Reader
from gridrisk.api.etags import not_modified
from gridrisk.db.sql_files import sql
from gridrisk.errors import NotFound
from gridrisk.tiles.cache import CachedTile, TileService, content_etag
from gridrisk.tiles.mvt import COLLECTIONS, MAX_ZOOM, TileCollection, tile_exists, tilejson

router = APIRouter(tags=["tiles"])

MVT = "application/vnd.mapbox-vector-tile"

_COLLECTION_IDS = ", ".join(COLLECTIONS)
CollectionId = Annotated[str, Path(description=f"One of: {_COLLECTION_IDS}", examples=["safety"])]


def _collection(collection: str) -> TileCollection:
    found = COLLECTIONS.get(collection)
    if found is None:
        raise NotFound(f"No tile collection '{collection}'. Collections: {_COLLECTION_IDS}.")
    return found


def _cache_control(request: Request) -> str:
    return "no-cache" if request.app.state.settings.public_read else "private, no-cache"


NOT_MODIFIED = {304: {"description": "Not modified: the ETag sent in If-None-Match is still current"}}
TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {MVT: {}},
        "description": "The tile (Mapbox Vector Tile, one layer named after the collection)",
    },
    204: {"description": "No feature in this tile"},
    **NOT_MODIFIED,
}


@router.get(
    "/tiles/{collection}/{z}/{x}/{y}.mvt",
    summary="A vector tile of a collection (Web Mercator, XYZ)",
    description="Mapbox Vector Tile v2 built by PostGIS (ST_AsMVT): extent 4096, buffer 64, geometry "
    "quantised to the tile grid (so simplified by zoom), one layer named after the collection, MVT "
    "feature id = the row's integer id. Grid layers carry code, name, colour and district_code; "
    "`/tiles/{collection}.json` lists every collection's fields and zoom range. An empty tile is "
    "204. Tiles are served from a cache that is never stale: once a write is acknowledged, every "
    "tile over a changed cell or feature shows it. `Cache-Control: no-cache` with a content ETag: "
    "clients revalidate and get 304 while the tile is unchanged. `X-Tile-Cache: hit|miss` tells "
    "whether this worker's cache answered. Unknown collection, z outside 0–22 or below the "
    "collection's minzoom, or x/y ≥ 2^z: 404.",
    responses=TILE_RESPONSES,
    response_class=Response,
)
async def get_tile(
    request: Request,
    collection: CollectionId,
    z: Annotated[int, Path(description=f"Zoom 0–{MAX_ZOOM}")],
    x: Annotated[int, Path(description="Column, 0 … 2^z − 1 from the west")],
    y: Annotated[int, Path(description="Row, 0 … 2^z − 1 from the north")],
    _: Reader,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    coll = _collection(collection)
    if not tile_exists(z, x, y):
        raise NotFound(
            f"No tile {z}/{x}/{y}: z must be 0–{MAX_ZOOM} and x, y within 0…2^z−1"
            + (f" (0–{(1 << z) - 1} at z={z})." if 0 <= z <= MAX_ZOOM else ".")
        )
    if z < coll.minzoom:
        raise NotFound(
            f"Collection '{coll.id}' has tiles from zoom {coll.minzoom} (its features are too many to "
            f"draw below); see /tiles/{coll.id}.json."
        )
    service: TileService = request.app.state.tile_service  # made in the lifespan
    tile, hit = await service.tile(coll, z, x, y)
    return _tile_response(request, tile, hit=hit, if_none_match=if_none_match)


def _tile_response(request: Request, tile: CachedTile, *, hit: bool, if_none_match: str | None) -> Response:
    headers = {
        "ETag": tile.etag,
        "Cache-Control": _cache_control(request),
        "X-Tile-Cache": "hit" if hit else "miss",
    }
    if not_modified(if_none_match, tile.etag):
        return Response(status_code=304, headers=headers)
    if not tile.body:
        return Response(status_code=204, headers=headers)
    return Response(tile.body, media_type=MVT, headers=headers)


@router.get(
    "/tiles/{collection}.json",
    summary="TileJSON 3.0.0 of a tile collection",
    description="The tile URL template, bounds of the collection's features (lon/lat), zoom range and "
    "the layer's fields with their meaning: what MapLibre and other clients need to add the source.",
    responses={200: {"content": {"application/json": {}}, "description": "TileJSON 3.0.0"}, **NOT_MODIFIED},
    response_class=Response,
)
async def get_tilejson(
    request: Request,
    collection: CollectionId,
    _: Reader,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    coll = _collection(collection)
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(sql("tile_extent"), {"table": coll.table, "layer": coll.layer})
        row = await cur.fetchone()
    bounds = (
        (row["west"], row["south"], row["east"], row["north"]) if row and row["west"] is not None else None
    )
    base = str(request.base_url).rstrip("/")
    doc = tilejson(coll, tiles_url=f"{base}/tiles/{coll.id}/{{z}}/{{x}}/{{y}}.mvt", bounds=bounds)
    body = orjson.dumps(doc)
    etag = content_etag(body)
    headers = {"ETag": etag, "Cache-Control": _cache_control(request)}
    if not_modified(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
