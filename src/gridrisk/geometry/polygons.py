"""Pure polygon geometry: repair, polygonal parts, multipolygons (metric transforms: metric_crs.py)."""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

WGS84 = "EPSG:4326"


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


def lonlat(geom: BaseGeometry | None) -> list[float] | None:
    """A representative [lon, lat] of a geometry already in EPSG:4326."""
    if geom is None or geom.is_empty:
        return None
    try:
        point = shapely.point_on_surface(geom)
    except shapely.errors.GEOSException:  # some invalid shapes defeat point_on_surface
        point = shapely.centroid(shapely.envelope(geom))
    return None if point.is_empty else [float(point.x), float(point.y)]
