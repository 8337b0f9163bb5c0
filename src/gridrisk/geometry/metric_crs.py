"""The metric CRS a city measures in: picked from its location, with transforms to and from WGS 84.

Areas, overlaps, gaps and distances are computed in a transverse Mercator projection whose central
meridian is near the city, where its scale error is negligible: 1.0003 in area 1.5° from the
meridian (Nanjing in CM 120E), but 1.059 at Chengdu and 1.176 at Urumqi in that same zone.
In China (CGCS2000's area of use) that is the CGCS2000 3-degree Gauss-Kruger zone whose central
meridian is nearest (EPSG:4534 CM 75E … EPSG:4554 CM 135E, the variants without a zone prefix
in the easting); elsewhere the WGS 84 UTM zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

# CGCS2000 (EPSG:4490)'s area of use, as pyproj gives it: west, south, east, north.
CHINA_BOUNDS = (73.62, 16.7, 134.77, 53.56)
GK_FIRST_EPSG, GK_FIRST_MERIDIAN, GK_LAST_MERIDIAN = 4534, 75, 135  # CM 75E … CM 135E, 3° apart


def metric_epsg_for(lon: float, lat: float) -> int:
    """The EPSG code of the metric CRS for a place: its CGCS2000 3° Gauss-Kruger zone, or UTM abroad."""
    west, south, east, north = CHINA_BOUNDS
    if west <= lon <= east and south <= lat <= north:
        meridian = min(max(round(lon / 3) * 3, GK_FIRST_MERIDIAN), GK_LAST_MERIDIAN)
        return GK_FIRST_EPSG + (meridian - GK_FIRST_MERIDIAN) // 3
    zone = min(int((lon + 180) // 6) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone


class MetricCRSError(ValueError):
    """A CRS that cannot serve as the city's metric CRS (unknown, geographic, or not in metres)."""


def check_metric_epsg(epsg: int) -> CRS:
    """The CRS for EPSG:<epsg>, or MetricCRSError unless it is projected with metre axes."""
    try:
        crs = CRS.from_epsg(epsg)
    except CRSError as exc:
        raise MetricCRSError(f"EPSG:{epsg} is not a known coordinate reference system") from exc
    if not crs.is_projected:
        raise MetricCRSError(f"EPSG:{epsg} ({crs.name}) is not projected: areas need metres, not degrees")
    units = {axis.unit_name for axis in crs.axis_info}
    if units != {"metre"}:
        raise MetricCRSError(f"EPSG:{epsg} ({crs.name}) measures in {', '.join(sorted(units))}, not metres")
    return crs


def parse_epsg(text: str) -> int:
    """'EPSG:4544', 'epsg:4544' or '4544' → 4544 (MetricCRSError otherwise)."""
    code = text.strip().upper().removeprefix("EPSG:")
    if not code.isdigit():
        raise MetricCRSError(f"'{text}' is not an EPSG code (write it as EPSG:4544)")
    return int(code)


@dataclass(frozen=True)
class MetricCRS:
    """One metric CRS and the vectorised transforms between it and WGS 84 longitude/latitude."""

    epsg: int

    @property
    def srs(self) -> str:
        return f"EPSG:{self.epsg}"

    @cached_property
    def _forward(self) -> Transformer:
        return Transformer.from_crs("EPSG:4326", self.srs, always_xy=True)

    @cached_property
    def _inverse(self) -> Transformer:
        return Transformer.from_crs(self.srs, "EPSG:4326", always_xy=True)

    def to_metric(self, geoms: np.ndarray) -> np.ndarray:
        """EPSG:4326 geometries to metres, vectorised (None stays None)."""
        return shapely.transform(geoms, lambda xy: _apply(self._forward, xy))

    def to_lonlat(self, geoms: np.ndarray) -> np.ndarray:
        """Geometries in metres back to EPSG:4326, vectorised."""
        return shapely.transform(geoms, lambda xy: _apply(self._inverse, xy))

    def lonlat_many(self, points: np.ndarray) -> list[list[float] | None]:
        """Points in metres to [lon, lat] pairs (None for empty points)."""
        if len(points) == 0:
            return []
        lon, lat = self._inverse.transform(shapely.get_x(points), shapely.get_y(points))
        return [
            [float(x), float(y)] if math.isfinite(x) and math.isfinite(y) else None
            for x, y in zip(lon, lat, strict=True)
        ]


def _apply(transformer: Transformer, xy: np.ndarray) -> np.ndarray:
    return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))


def metric_crs_for(lon: float, lat: float) -> MetricCRS:
    """The MetricCRS for a place (see metric_epsg_for)."""
    return MetricCRS(metric_epsg_for(lon, lat))
