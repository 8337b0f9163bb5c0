"""Pure polygon geometry: repair, polygonal parts, multipolygons and metric transforms (EPSG:4549)."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

WGS84 = "EPSG:4326"
METRIC = "EPSG:4549"  # CGCS2000 / 3-degree Gauss-Kruger CM 120E: metres around Nanjing


def repair_polygon(geom: BaseGeometry) -> MultiPolygon | None:
    """make_valid keeping only polygonal parts; None when nothing with area is left."""
    # "structure" unions overlapping shells and subtracts holes, which is what a drawn cell means;
    # the default "linework" method would turn the overlap of two shells into a hole.
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    return polygonal_part(fixed)


def polygonal_part(geom: BaseGeometry | None) -> MultiPolygon | None:
    """The polygons of a geometry as one valid MultiPolygon, or None when it has none."""
    if geom is None or geom.is_empty:
        return None
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        polygons = list(shapely.get_parts(geom))
    elif geom.geom_type == "GeometryCollection":
        polygons = [p for part in shapely.get_parts(geom) if (sub := polygonal_part(part)) for p in sub.geoms]
    else:
        return None
    polygons = [p for p in polygons if not p.is_empty]
    if not polygons:
        return None
    multi = MultiPolygon(polygons)
    if not multi.is_valid:  # polygon parts of a collection may overlap each other
        multi = as_multipolygon_or_none(shapely.make_valid(multi, method="structure", keep_collapsed=False))
    return multi


def as_multipolygon_or_none(geom: BaseGeometry) -> MultiPolygon | None:
    if geom.geom_type == "GeometryCollection":
        return polygonal_part(geom)
    return (
        as_multipolygon(geom) if geom.geom_type in ("Polygon", "MultiPolygon") and not geom.is_empty else None
    )


def as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    return geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom])


def as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    """Polygons wrapped as one-part MultiPolygons, vectorised; MultiPolygons unchanged."""
    out = geoms.copy()
    single = shapely.get_type_id(geoms) == 3
    out[single] = shapely.multipolygons(geoms[single], indices=np.arange(int(single.sum())))
    return out


def in_lonlat_range(geoms: np.ndarray) -> np.ndarray:
    """Per geometry: all coordinates finite and within lon -180…180, lat -90…90 (False for empty)."""
    minx, miny, maxx, maxy = shapely.bounds(geoms).T
    with np.errstate(invalid="ignore"):  # NaN bounds of empty geometries compare False
        return (minx >= -180) & (maxx <= 180) & (miny >= -90) & (maxy <= 90)


@lru_cache(maxsize=2)
def transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def transform_xy(source: str, target: str) -> Callable[[np.ndarray], np.ndarray]:
    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = transformer(source, target).transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return apply


def to_metric(geoms: np.ndarray) -> np.ndarray:
    """EPSG:4326 geometries to EPSG:4549 metres, vectorised (None stays None)."""
    return shapely.transform(geoms, transform_xy(WGS84, METRIC))


def lonlat_many(points_metric: np.ndarray) -> list[list[float] | None]:
    """EPSG:4549 points to [lon, lat] pairs (None for empty points)."""
    if len(points_metric) == 0:
        return []
    lon, lat = transformer(METRIC, WGS84).transform(
        shapely.get_x(points_metric), shapely.get_y(points_metric)
    )
    return [
        [float(x), float(y)] if math.isfinite(x) and math.isfinite(y) else None
        for x, y in zip(lon, lat, strict=True)
    ]


def lonlat(geom: BaseGeometry | None) -> list[float] | None:
    """A representative [lon, lat] of a geometry already in EPSG:4326."""
    if geom is None or geom.is_empty:
        return None
    try:
        point = shapely.point_on_surface(geom)
    except shapely.errors.GEOSException:  # some invalid shapes defeat point_on_surface
        point = shapely.centroid(shapely.envelope(geom))
    return None if point.is_empty else [float(point.x), float(point.y)]
