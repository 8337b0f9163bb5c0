"""Distances in metres from a point to sites, as PostGIS's `ST_Distance(geography, geography)` gives them.

So that the nearest shelters can be answered from memory with the figures the database would
report. PostGIS (3.x, geography_distance → circ_tree_distance_tree) finds the point of the site
nearest the query point *on the sphere* (edges are great-circle arcs; 0 when a polygon holds the
point), then measures the geodesic between the two on the WGS 84 spheroid with GeographicLib's
inverse problem, and rounds to 1e-8 m. Here pyproj calls the same GeographicLib code, with the
spheroid built as PostGIS builds it (f = (a − b) / a), and the coordinates pass through radians
and back as they do in PostGIS. Measured against the database, 99.9% of distances are bit-equal
and none rounds differently at 0.1 m; the one known difference is the polygon test, planar here
and spherical there, for points within millimetres of a long edge (where both round to 0.0 m).

`SiteSet.lower_bounds` gives, for every site at once, a distance it cannot be nearer than (in
units of R_LOWER metres): the chord to the site's bounding cap, which is at most the angle on the
unit sphere. Every curve on the spheroid is at least a(1 − e²), its smallest radius of curvature,
times its image on the unit sphere at the same longitudes and latitudes (the metric M²dφ² +
N²cos²φ dλ² against dφ² + cos²φ dλ², with M and N both at least a(1 − e²)), so the bound holds for
the true geodesic; exact distances are then computed only for the sites whose bound is below the
k-th best distance found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import shapely
from pyproj import Geod

A = 6378137.0
RF = 298.257223563
B = A * (1.0 - 1.0 / RF)  # as PROJ reports the semi-minor axis, and PostGIS reads it
_GEOD = Geod(a=A, f=(A - B) / A)
_INV = getattr(_GEOD, "_inv_point", _GEOD.inv)  # the scalar call, without inv's dispatch
Vector = tuple[float, float, float]
# The smallest radius of curvature of the spheroid (meridional, at the equator), a little less.
R_LOWER = A * (1.0 - (A * A - B * B) / (A * A)) - 1.0
SMALL_EDGES = 10  # polygons of up to this many edges are walked in Python (_Edges._walk)
SLACK_M = 1.0  # absorbs the float error of the bound's chord near zero (~0.1 m)


def _through_radians(deg: float) -> float:
    """A coordinate as PostGIS hands it to GeographicLib: to radians (deg2rad) and back."""
    return (math.pi * deg / 180.0) * 180.0 / math.pi


def unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Points on the unit sphere (geocentric x, y, z) of longitudes and latitudes in degrees."""
    lo, la = np.pi * np.asarray(lon, float) / 180.0, np.pi * np.asarray(lat, float) / 180.0
    cl = np.cos(la)
    return np.stack([cl * np.cos(lo), cl * np.sin(lo), np.sin(la)], axis=-1)


def _angle(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The great-circle angle between unit vectors (rows), stable near zero."""
    return np.arctan2(np.linalg.norm(np.cross(p, q), axis=-1), np.sum(p * q, axis=-1))


def _edge_normals(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Unit normals of the great circles through consecutive vertices (PostGIS's robust_cross_product)."""
    p_lon, p_lat = np.pi * lon[:-1] / 180.0, np.pi * lat[:-1] / 180.0
    q_lon, q_lat = np.pi * lon[1:] / 180.0, np.pi * lat[1:] / 180.0
    qpp, qmp = (q_lon + p_lon) / -2.0, (q_lon - p_lon) / 2.0
    s_minus, s_plus = np.sin(p_lat - q_lat), np.sin(p_lat + q_lat)
    n = np.stack(
        [
            s_minus * np.sin(qpp) * np.cos(qmp) - s_plus * np.cos(qpp) * np.sin(qmp),
            s_minus * np.cos(qpp) * np.cos(qmp) + s_plus * np.sin(qpp) * np.sin(qmp),
            np.cos(p_lat) * np.cos(q_lat) * np.sin(q_lon - p_lon),
        ],
        axis=-1,
    )
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    return np.divide(n, length, out=np.zeros_like(n), where=length > 0)


class _Edges:
    """Every ring edge of one polygonal site, as unit vectors, for the nearest point on the sphere."""

    __slots__ = ("vertices", "start", "end", "normal", "mid", "cos_half", "small")

    def __init__(self, rings: Sequence[np.ndarray]) -> None:
        vertices, start, end, normal = [], [], [], []
        at = 0
        for ring in rings:
            vertices.append(unit_vectors(ring[:, 0], ring[:, 1]))
            start.append(np.arange(at, at + len(ring) - 1))
            end.append(np.arange(at + 1, at + len(ring)))
            normal.append(_edge_normals(ring[:, 0], ring[:, 1]))
            at += len(ring)
        self.vertices = np.concatenate(vertices)
        self.start, self.end = np.concatenate(start), np.concatenate(end)
        self.normal = np.concatenate(normal)
        # An edge's arc is the cone around its midpoint through its two ends (edge_point_in_cone).
        a, b = self.vertices[self.start], self.vertices[self.end]
        mid = a + b
        self.mid = mid / np.linalg.norm(mid, axis=-1, keepdims=True)
        self.cos_half = np.einsum("ij,ij->i", a, self.mid)
        # A few edges are walked faster in plain Python than numpy can start on them.
        self.small = (
            (
                [tuple(v) for v in self.vertices.tolist()],
                list(zip(self.normal.tolist(), self.mid.tolist(), self.cos_half.tolist(),
                         self.start.tolist(), self.end.tolist(), strict=True)),
            )
            if len(self.start) <= SMALL_EDGES
            else None
        )  # fmt: skip

    def nearest(self, p: Vector) -> tuple[float, float]:
        """The lon and lat (degrees) of the edges' point nearest P on the sphere."""
        v = self._walk(p) if self.small is not None else self._vectorised(np.asarray(p))
        lon = math.atan2(v[1], v[0]) * 180.0 / math.pi
        lat = math.asin(max(-1.0, min(1.0, v[2]))) * 180.0 / math.pi
        return lon, lat

    def _walk(self, p: Vector) -> Vector:
        """`_vectorised`, edge by edge: the same candidates, compared in the same order."""
        assert self.small is not None
        vertices, edges = self.small
        px, py, pz = p
        chords = [(x - px) ** 2 + (y - py) ** 2 + (z - pz) ** 2 for x, y, z in vertices]
        best, at = math.inf, vertices[0]
        for (nx, ny, nz), (mx, my, mz), cos_half, a, b in edges:
            t = nx * px + ny * py + nz * pz
            kx, ky, kz = px - nx * t, py - ny * t, pz - nz * t
            norm = math.sqrt(kx * kx + ky * ky + kz * kz)
            kx, ky, kz = kx / norm, ky / norm, kz / norm
            d, v = math.inf, vertices[a]
            if kx * mx + ky * my + kz * mz >= cos_half - 1e-15:
                d, v = (kx - px) ** 2 + (ky - py) ** 2 + (kz - pz) ** 2, (kx, ky, kz)
            if chords[a] < d:
                d, v = chords[a], vertices[a]
            if chords[b] < d:
                d, v = chords[b], vertices[b]
            if d < best:
                best, at = d, v
        return at

    def _vectorised(self, p: np.ndarray) -> np.ndarray:
        """The edges' point nearest P on the sphere, as a unit vector."""
        # Project P onto each edge's great circle; where that falls within the arc it is the
        # edge's nearest point, else the nearer end is (edge_distance_to_point). Squared chords
        # order points as their angles from P do, so no angle is computed.
        normal = self.normal
        k = p - normal * (normal @ p)[:, None]
        k /= np.sqrt(np.einsum("ij,ij->i", k, k))[:, None]
        dk = k - p
        chord_k = np.einsum("ij,ij->i", dk, dk)
        chord_k[np.einsum("ij,ij->i", k, self.mid) < self.cos_half - 1e-15] = np.inf
        dv = self.vertices - p
        chord_v = np.einsum("ij,ij->i", dv, dv)
        # The first minimum wins, in this order, as in PostGIS.
        best = np.stack([chord_k, chord_v[self.start], chord_v[self.end]])
        which = best.argmin(axis=0)
        i = int(best[which, np.arange(len(which))].argmin())
        return k[i] if which[i] == 0 else self.vertices[(self.start if which[i] == 1 else self.end)[i]]


class SiteSet:
    """Sites (points, polygons, multipolygons in lon/lat) ready for distance queries from a point."""

    def __init__(self, geoms: Sequence[shapely.Geometry]) -> None:
        n = len(geoms)
        self.geoms = list(geoms)
        self.centre = np.zeros((n, 3))
        self.radius = np.zeros(n)  # the bounding cap's angle (0 for a point)
        self.point_deg: list[tuple[float, float] | None] = [None] * n
        self.edges: list[_Edges | None] = [None] * n
        self.keys: list[bytes | None] = [None] * n  # what each site was built from (reusing)
        # For lower_bounds, once every site is in (_finish): 2 × centre, and each cap's angle
        # with the slack, in the bounds' units.
        self._twice = self.centre
        self._reach = self.radius

    def _finish(self) -> SiteSet:
        self._twice, self._reach = 2.0 * self.centre, self.radius + SLACK_M / R_LOWER
        return self

    @classmethod
    def reusing(
        cls, geoms: Sequence[shapely.Geometry], keys: Sequence[bytes], previous: SiteSet | None = None
    ) -> SiteSet:
        """Sites for GEOMS, taking what PREVIOUS built from an equal KEY (their WKB) as it is."""
        made = cls(geoms)
        old = {k: i for i, k in enumerate(previous.keys)} if previous is not None else {}
        for i, (g, key) in enumerate(zip(geoms, keys, strict=True)):
            j = old.get(key)
            if j is not None and previous is not None:
                made.geoms[i] = previous.geoms[j]
                made.centre[i], made.radius[i] = previous.centre[j], previous.radius[j]
                made.point_deg[i], made.edges[i] = previous.point_deg[j], previous.edges[j]
            else:
                made._build(i, g)
            made.keys[i] = key
        return made._finish()

    @classmethod
    def of(cls, geoms: Sequence[shapely.Geometry]) -> SiteSet:
        """Sites for GEOMS, every one built."""
        made = cls(geoms)
        for i, g in enumerate(geoms):
            made._build(i, g)
        return made._finish()

    def _build(self, i: int, g: shapely.Geometry) -> None:
        if g.geom_type == "Point":
            self.centre[i] = unit_vectors(g.x, g.y)
            self.point_deg[i] = (_through_radians(g.x), _through_radians(g.y))
            return
        parts = list(g.geoms) if g.geom_type == "MultiPolygon" else [g]
        rings = [np.asarray(r.coords)[:, :2] for part in parts for r in (part.exterior, *part.interiors)]
        vertices = unit_vectors(*np.concatenate(rings).T)
        c = vertices.sum(axis=0)
        c /= np.linalg.norm(c)
        self.centre[i] = c
        # A cap under a quarter turn is convex on the sphere: it holds the great-circle edges
        # between the vertices it holds, and so the whole polygon. The margin covers rounding.
        self.radius[i] = float(_angle(vertices, c[None, :]).max()) + 1e-9
        self.edges[i] = _Edges(rings)
        shapely.prepare(g)

    def __len__(self) -> int:
        return len(self.geoms)

    def lower_bounds(self, p: Vector, excluded: np.ndarray | None = None) -> np.ndarray:
        """For each site, a bound on its distance from the unit vector P in units of R_LOWER metres
        (see the module doc); EXCLUDED (0 or infinity per site) is added, to rank left-out sites last."""
        # The chord, sqrt(2 − 2 cos θ), is at most the angle θ itself. In place: one array.
        bound = self._twice @ np.asarray(p)
        np.subtract(2.0, bound, out=bound)
        np.maximum(bound, 0.0, out=bound)
        np.sqrt(bound, out=bound)
        bound -= self._reach
        if excluded is not None:
            bound += excluded
        return bound

    @staticmethod
    def origin(lon: float, lat: float) -> tuple[float, float, float, float]:
        """A query point as `distance` takes it: as given, and as PostGIS hands it to GeographicLib."""
        return lon, lat, _through_radians(lon), _through_radians(lat)

    def distance(self, i: int, origin: tuple[float, float, float, float], p: Vector) -> float:
        """Metres from ORIGIN (unit vector P) to site I, as PostGIS's ST_Distance on geography."""
        at = self.point_deg[i]
        if at is None:
            # Outside the site's cap (the chord to its centre, at most the angle, is past the cap's
            # angle) the polygon cannot hold the point: no need to ask.
            cx, cy, cz = self.centre[i].tolist()
            chord = math.sqrt((cx - p[0]) ** 2 + (cy - p[1]) ** 2 + (cz - p[2]) ** 2)
            if chord < self.radius[i] and shapely.intersects_xy(self.geoms[i], origin[0], origin[1]):
                return 0.0
            edges = self.edges[i]
            assert edges is not None
            at = edges.nearest(p)
        d = _INV(at[0], at[1], origin[2], origin[3])[2]
        return round(d * 1e8) / 1e8  # PostGIS knocks off "funny business at the nanometre level"


def box_cap(x0: float, y0: float, x1: float, y1: float) -> tuple[Vector, float]:
    """A cap holding a small lon/lat box: its centre, and its reach as a chord. The farthest of the
    corners and edge midpoints, with a margin for the sphere's curvature (far below 1% over a few
    kilometres)."""
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    centre = unit_vector(cx, cy)
    points = unit_vectors(
        np.array([x0, x1, x0, x1, cx, cx, x0, x1]), np.array([y0, y0, y1, y1, y0, y1, cy, cy])
    )
    return centre, float(np.linalg.norm(points - np.asarray(centre), axis=1).max()) * 1.01


def cap_bound(p: Vector, centre: Vector, reach: float) -> float:
    """Metres no point of the cap (CENTRE, REACH) can be nearer than to P: for any q in it,
    chord(p, q) ≥ chord(p, centre) − chord(centre, q), the triangle inequality in space."""
    chord = math.sqrt((p[0] - centre[0]) ** 2 + (p[1] - centre[1]) ** 2 + (p[2] - centre[2]) ** 2)
    return R_LOWER * (chord - reach) - SLACK_M


def unit_vector(lon: float, lat: float) -> Vector:
    """One point on the unit sphere."""
    la, lo = math.pi * lat / 180.0, math.pi * lon / 180.0
    cl = math.cos(la)
    return (cl * math.cos(lo), cl * math.sin(lo), math.sin(la))
