"""The coordinate reference systems /ogc answers in (OGC API – Features Part 2): URIs, axis order, SQL.

Data are stored in WGS 84 longitude/latitude (storage CRS: CRS84). An answer in another CRS is
transformed by PostGIS and written in that CRS's own axis order, as Part 2 requires: EPSG:4326 and
EPSG:4490 (CGCS2000) are latitude first; the CGCS2000 Gauss-Kruger zones (EPSG:4534–4554, e.g.
EPSG:4549 for Nanjing) are northing first; EPSG:3857 is easting first. `bbox-crs` reads a bbox the
same way. GCJ-02, the offset system of Chinese web maps (Amap, Tencent), is offered as a
non-standard output only (`crs=GCJ-02`, longitude first), converted in Python after the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gridrisk.errors import BadRequest

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GCJ02 = "https://gridrisk.dev/def/crs/GCJ-02"
GK_ZONES = range(4534, 4555)  # CGCS2000 / 3-degree Gauss-Kruger CM 75E … CM 135E
_EPSG = re.compile(
    r"(?:https?://www\.opengis\.net/def/crs/EPSG/0/|urn:ogc:def:crs:EPSG::|EPSG:)(\d{4,5})", re.IGNORECASE
)


def epsg_uri(code: int) -> str:
    return f"http://www.opengis.net/def/crs/EPSG/0/{code}"


@dataclass(frozen=True)
class Crs:
    """A CRS answers can be given in: its URI, PostGIS SRID (0: the stored lon/lat), axis order."""

    uri: str
    srid: int = 0
    flip: bool = False  # the CRS's first axis is latitude or northing: swap PostGIS's x and y
    projected: bool = False

    @property
    def precision(self) -> int:
        return 3 if self.projected else 7  # millimetres, or about a centimetre in degrees

    def geometry_sql(self, geom: str) -> str:
        """GEOM (stored, lon/lat) as this CRS's coordinates, in its axis order."""
        out = geom if self.srid == 0 else f"ST_Transform({geom}, {self.srid})"
        return f"ST_FlipCoordinates({out})" if self.flip else out


STORAGE = Crs(CRS84)
SERVED: dict[str, Crs] = {
    CRS84: STORAGE,
    epsg_uri(4326): Crs(epsg_uri(4326), 4326, flip=True),
    epsg_uri(4490): Crs(epsg_uri(4490), 4490, flip=True),
    epsg_uri(3857): Crs(epsg_uri(3857), 3857, projected=True),
    **{epsg_uri(z): Crs(epsg_uri(z), z, flip=True, projected=True) for z in GK_ZONES},
    GCJ02: Crs(GCJ02),  # written as the stored lon/lat, then shifted (routes.py)
}
_ALIASES = {
    "crs84": CRS84,
    "ogc:crs84": CRS84,
    "urn:ogc:def:crs:ogc:1.3:crs84": CRS84,
    "gcj-02": GCJ02,
    "gcj02": GCJ02,
}


def listed(metric_srid: int) -> list[str]:
    """The CRSs a collection lists: CRS84, the geographic ones, Web Mercator and the city's zone."""
    out = [CRS84, epsg_uri(4326), epsg_uri(4490), epsg_uri(3857)]
    if epsg_uri(metric_srid) in SERVED:
        out.append(epsg_uri(metric_srid))
    return out


def parse_crs(value: str | None, name: str) -> Crs:
    """The CRS a `crs` or `bbox-crs` parameter names (its URI, EPSG:n or a short name); 400 otherwise."""
    if value is None:
        return STORAGE
    text = value.strip()
    uri = _ALIASES.get(text.lower()) or (CRS84 if text.replace("https://", "http://") == CRS84 else text)
    if (m := _EPSG.fullmatch(text)) is not None:
        uri = epsg_uri(int(m.group(1)))
    crs = SERVED.get(uri)
    if crs is None or (name != "crs" and uri == GCJ02):
        served = ", ".join(u for u in SERVED if u not in (GCJ02,) and "/EPSG/0/45" not in u)
        extra = ", and GCJ-02 (non-standard)." if name == "crs" else "."
        raise BadRequest(
            f"{name}={value!r} is not served. Served: {served}, the CGCS2000 Gauss-Kruger zones "
            f"{epsg_uri(4534)} … {epsg_uri(4554)}{extra}",
            errors=[{"field": name, "message": "not a served CRS"}],
        )
    return SERVED[uri]


Box = tuple[float, float, float, float]


def bbox_in_storage_order(crs: Crs, bbox: Box) -> Box:
    """A bbox given in CRS's axis order as (x min, y min, x max, y max) in PostGIS's x/y order."""
    if crs.flip:
        return (bbox[1], bbox[0], bbox[3], bbox[2])
    return bbox


def content_crs(crs: Crs) -> dict[str, str]:
    """The Content-Crs header of an answer in CRS."""
    return {"Content-Crs": f"<{crs.uri}>"}


def shift_to_gcj02(features: bytes) -> bytes:
    """Features (GeoJSON, joined by commas) with every coordinate moved from WGS 84 to GCJ-02."""
    import numpy as np
    import orjson

    from gridrisk.geometry.gcj02 import wgs84_to_gcj02

    parsed = orjson.loads(b"[" + features + b"]")
    for feature in parsed:
        geometry = feature.get("geometry")
        if geometry:
            geometry["coordinates"] = _shift(geometry["coordinates"], np, wgs84_to_gcj02)
    return orjson.dumps(parsed)[1:-1]


def _shift(coords, np, convert):
    if coords and isinstance(coords[0], int | float):
        lon, lat = convert(np.array([coords[0]]), np.array([coords[1]]))
        return [round(float(lon[0]), 7), round(float(lat[0]), 7)]
    if coords and isinstance(coords[0], list) and coords[0] and isinstance(coords[0][0], int | float):
        xy = np.array(coords, dtype=float)
        lon, lat = convert(xy[:, 0], xy[:, 1])
        return np.round(np.column_stack([lon, lat]), 7).tolist()
    return [_shift(c, np, convert) for c in coords]
