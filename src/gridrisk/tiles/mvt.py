"""Vector-tile collections and Web Mercator tile maths (WebMercatorQuad, XYZ rows from the north).

Each collection is one MVT layer rendered by one SQL file (`db/sql/tile_*.sql`): features whose
bounding box meets the tile's envelope widened by the buffer, projected to EPSG:3857, clipped and
quantised to the 4096 grid by ST_AsMVTGeom. Quantisation is the simplification by zoom: vertices
closer than a tile pixel merge and points on straight lines go, so a cell drawn at z10 carries far
fewer vertices than at z16. District outlines (thousands of vertices each) are also simplified to
half a pixel first, which keeps low-zoom district tiles small and fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gridrisk.registry.catalog import KINDS
from gridrisk.registry.kind import FeatureKind

EXTENT = 4096
BUFFER = 64
# The tile's envelope widened by the buffer, as a fraction of the tile's side.
BUFFER_FRACTION = BUFFER / EXTENT
MAX_ZOOM = 22
# Web Mercator's half-width in metres, and the latitude where the square world ends.
ORIGIN_SHIFT = 20037508.342789244
MAX_LAT = 85.0511287798066


@dataclass(frozen=True, slots=True)
class TileCollection:
    """One vector-tile layer: where its rows come from, its zoom range and its properties."""

    id: str
    title: str
    description: str
    sql: str  # db/sql/<sql>.sql renders one tile
    table: str  # the table the features live in (for the extent)
    layer: str | None  # cells.layer for grid and admin collections
    minzoom: int
    maxzoom: int
    geometry: str  # what the layer holds, for TileJSON: polygon | point | point, polygon
    fields: dict[str, str] = field(default_factory=dict)
    simplify: bool = False  # pre-simplify to half a pixel (large polygons only)

    @property
    def grid(self) -> bool:
        """True for the grid layers, whose tiles carry the four-colour map's colours."""
        return self.table == "cells" and self.layer != "district"


_GRID_FIELDS = {
    "code": "String: the cell's code (the OGC feature id)",
    "name": "String: the cell's name",
    "colour": "String: the four-colour map's colour (red, orange, yellow, blue)",
    "district_code": "String: the district holding the largest share of the cell",
}


def _grid(layer: str, title: str) -> TileCollection:
    return TileCollection(
        id=layer,
        title=title,
        description=f"{title}: grid cells with their four-colour risk colour. MVT feature id = cell id.",
        sql="tile_grid",
        table="cells",
        layer=layer,
        minzoom=8,
        maxzoom=16,
        geometry="polygon",
        fields=dict(_GRID_FIELDS),
    )


def _registry(kind: FeatureKind) -> TileCollection:
    """A feature kind's layer (registry/): its id, code and name, then the properties with a tile field."""
    p = kind.publish
    fields = {
        "id": f"Number: the {kind.noun}'s id",
        "code": f"String: the {kind.noun}'s code",
        "name": "String: name",
        **{prop.name: prop.tile for prop in kind.published if prop.tile},
    }
    return TileCollection(
        id=p.collection,
        title=p.title,
        description=p.tile_description,
        sql=p.tile_sql,
        table=kind.table,
        layer=None,
        minzoom=p.minzoom,
        maxzoom=p.maxzoom,
        geometry=kind.geometry.tile_geometry,
        fields=fields,
    )


COLLECTIONS: dict[str, TileCollection] = {
    c.id: c
    for c in (
        _grid("comprehensive", "Comprehensive grid (综合网格)"),
        _grid("emergency", "Emergency grid (应急网格)"),
        _grid("safety", "Safety-supervision grid (安全监管网格)"),
        TileCollection(
            id="districts",
            title="Districts (区)",
            description="The city's districts (admin layer `district`). MVT feature id = cell id.",
            sql="tile_districts",
            table="cells",
            layer="district",
            minzoom=0,
            maxzoom=16,
            geometry="polygon",
            fields={"code": "String: the district's code", "name": "String: the district's name"},
            simplify=True,
        ),
        *(_registry(kind) for kind in KINDS.values()),
    )
}

# cells.layer → the collection showing it (the admin layer's collection has a plural id).
LAYER_COLLECTION = {c.layer: c.id for c in COLLECTIONS.values() if c.layer is not None}
GRID_COLLECTIONS = tuple(c.id for c in COLLECTIONS.values() if c.grid)
ADMIN_LAYERS = frozenset({"district"})


def tile_exists(z: int, x: int, y: int) -> bool:
    """Whether (z, x, y) is a tile of WebMercatorQuad at zoom 0..MAX_ZOOM."""
    return 0 <= z <= MAX_ZOOM and 0 <= x < (1 << z) and 0 <= y < (1 << z)


def pixel_m(z: int) -> float:
    """One tile pixel (of EXTENT per tile) in Web Mercator metres at zoom Z."""
    return 2 * ORIGIN_SHIFT / (1 << z) / EXTENT


def lonlat_to_tile_fraction(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Fractional tile coordinates of a lon/lat at zoom Z (x east, y south, as XYZ tiles count)."""
    n = 1 << z
    lat = max(-MAX_LAT, min(MAX_LAT, lat))
    fx = (lon + 180.0) / 360.0 * n
    fy = (1.0 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2.0 * n
    return fx, fy


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """The tile's lon/lat bounds (west, south, east, north)."""
    n = 1 << z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)


# Float noise in the projection must never let a changed box slip past a tile it touches.
_EPS = 1e-6


def tile_range(box: tuple[float, float, float, float], z: int) -> tuple[int, int, int, int]:
    """(xmin, ymin, xmax, ymax), inclusive: every tile at Z whose buffered envelope meets BOX.

    A tile shows every feature whose box meets its envelope widened by BUFFER pixels, so a change
    there is a change of that tile too: the range is widened by the same buffer.
    """
    minx, miny, maxx, maxy = box
    n = 1 << z
    fx0, fy0 = lonlat_to_tile_fraction(minx, maxy, z)  # north-west corner: smallest x and y
    fx1, fy1 = lonlat_to_tile_fraction(maxx, miny, z)
    pad = BUFFER_FRACTION + _EPS
    return (
        max(0, math.floor(fx0 - pad)),
        max(0, math.floor(fy0 - pad)),
        min(n - 1, math.floor(fx1 + pad)),
        min(n - 1, math.floor(fy1 + pad)),
    )


def tile_params(collection: TileCollection, z: int, x: int, y: int) -> dict:
    """The bind parameters of the collection's tile SQL."""
    params: dict = {"z": z, "x": x, "y": y, "name": collection.id, "margin": BUFFER_FRACTION}
    if collection.layer is not None:
        params["layer"] = collection.layer
    if collection.simplify:
        params["tolerance"] = pixel_m(z) / 2
    return params


def tilejson(
    collection: TileCollection, *, tiles_url: str, bounds: tuple[float, float, float, float] | None
) -> dict:
    """TileJSON 3.0.0 for COLLECTION, its tiles at TILES_URL, BOUNDS from the data (None: empty)."""
    west, south, east, north = bounds or (-180.0, -MAX_LAT, 180.0, MAX_LAT)
    centre_zoom = min(collection.maxzoom, max(collection.minzoom, 10))
    return {
        "tilejson": "3.0.0",
        "name": collection.id,
        "description": collection.description,
        "version": "1.0.0",
        "scheme": "xyz",
        "tiles": [tiles_url],
        "minzoom": collection.minzoom,
        "maxzoom": collection.maxzoom,
        "bounds": [round(west, 7), round(south, 7), round(east, 7), round(north, 7)],
        "center": [round((west + east) / 2, 7), round((south + north) / 2, 7), centre_zoom],
        "vector_layers": [
            {
                "id": collection.id,
                "description": f"{collection.title}; geometry: {collection.geometry}",
                "minzoom": collection.minzoom,
                "maxzoom": collection.maxzoom,
                "fields": dict(collection.fields),
            }
        ],
    }
