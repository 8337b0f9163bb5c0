"""Query parameters shared by several routes, validated once: bbox, paging, coordinates."""

from __future__ import annotations

from typing import Annotated, NamedTuple

from fastapi import Depends, Query

from gridrisk.errors import InvalidInput

MAX_PAGE = 10_000


async def parse_bbox(
    bbox: Annotated[
        str | None,
        Query(
            description="minLon,minLat,maxLon,maxLat in EPSG:4326",
            examples=["118.70,31.95,118.90,32.10"],
            pattern=r"^\s*-?\d+(\.\d+)?\s*(,\s*-?\d+(\.\d+)?\s*){3}$",
        ),
    ] = None,
) -> list[float] | None:
    """Parse and check a bbox query parameter."""
    if bbox is None:
        return None
    parts = [float(p) for p in bbox.split(",")]
    minx, miny, maxx, maxy = parts
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise InvalidInput(
            "bbox is outside longitude -180..180 / latitude -90..90.",
            errors=[{"field": "bbox", "message": "coordinates out of range"}],
        )
    if minx > maxx or miny > maxy:
        raise InvalidInput(
            "bbox must be minLon,minLat,maxLon,maxLat with min ≤ max.",
            errors=[{"field": "bbox", "message": "min greater than max"}],
        )
    return parts


BBox = Annotated[list[float] | None, Depends(parse_bbox)]


class Page(NamedTuple):
    """limit/offset paging parameters."""

    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size")] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")] = 0,
) -> Page:
    """Async on purpose: a sync dependency would cost a thread hop per request."""
    return Page(limit, offset)


PageDep = Annotated[Page, Depends(page_params)]
Lon = Annotated[float, Query(ge=-180, le=180, description="Longitude, WGS 84", examples=[118.7969])]
Lat = Annotated[float, Query(ge=-90, le=90, description="Latitude, WGS 84", examples=[32.0603])]
