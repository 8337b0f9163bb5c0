"""Query parameters shared by several routes, validated once: bbox, paging, coordinates."""

from __future__ import annotations

import math
from typing import Annotated, NamedTuple

from fastapi import Depends, Query

from gridrisk.errors import GridRiskError, InvalidInput

MAX_PAGE = 10_000


def read_bbox(
    raw: str,
    *,
    error: type[GridRiskError] = InvalidInput,
    echo: bool = False,
    heights: bool = False,
    antimeridian: bool = False,
) -> tuple[float, float, float, float]:
    """The one bbox parser: minLon,minLat,maxLon,maxLat from RAW, checked, or ERROR naming `bbox`.

    The API's routes take the defaults (422, min ≤ max on both axes). OGC API – Features (ogc/)
    answers 400 with the value echoed in the message, accepts six numbers (heights, ignored) and a
    box whose minLon > maxLon: one that crosses the antimeridian.
    """
    what = f"bbox={raw!r}" if echo else "bbox"
    try:
        numbers = [float(p) for p in raw.split(",")]
    except ValueError:
        numbers = []
    if len(numbers) not in ((4, 6) if heights else (4,)) or not all(math.isfinite(n) for n in numbers):
        raise error(
            f"{what} must be minLon,minLat,maxLon,maxLat (four numbers, CRS84).",
            errors=[{"field": "bbox", "message": "four comma-separated numbers"}],
        )
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    minx, miny, maxx, maxy = numbers
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise error(
            f"{what} is outside longitude -180..180 / latitude -90..90.",
            errors=[{"field": "bbox", "message": "coordinates out of range"}],
        )
    if antimeridian:
        if miny > maxy:
            raise error(
                f"{what}: the lower latitude ({miny}) is above the upper one ({maxy}).",
                errors=[{"field": "bbox", "message": "minLat greater than maxLat"}],
            )
    elif minx > maxx or miny > maxy:
        raise error(
            f"{what} must be minLon,minLat,maxLon,maxLat with min ≤ max.",
            errors=[{"field": "bbox", "message": "min greater than max"}],
        )
    return minx, miny, maxx, maxy


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
    """Parse and check a bbox query parameter (its pattern has already refused what is not 4 numbers)."""
    return None if bbox is None else list(read_bbox(bbox))


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
