"""Validate a grid layer's cells before anything is written: geometry, codes, overlaps, gaps, outside.

Returns the cleaned cells with a report a city GIS technician can act on. Areas and distances are
computed in metres in the city's metric CRS (metric_crs.py), never in degrees.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

from gridrisk.geometry.metric_crs import MetricCRS, metric_crs_for
from gridrisk.geometry.polygons import (
    WGS84,
    as_multipolygons,
    in_lonlat_range,
    lonlat,
    polygonal_part,
    repair_polygon,
)
from gridrisk.imports.grid_files import (
    _REASON_POINT,
    KINDS,
    MAX_ROWS_PER_DUPLICATE,
    SNAP_M,
    as_code,
    crs_label,
)
from gridrisk.imports.grid_report import ValidationReport


@dataclass(frozen=True)
class Tolerances:
    """Where noise ends and a warning becomes an error; all areas in m² (the metric CRS)."""

    overlap_noise_m2: float = 1.0
    overlap_warn_m2: float = 1_000.0
    overlap_warn_share: float = 0.05  # of the smaller cell of the pair
    gap_noise_m2: float = 1.0
    gap_warn_m2: float = 10_000.0  # float("inf") makes every gap a warning (a grid for part of the city)
    outside_noise_m2: float = 1.0
    outside_warn_m2: float = 10_000.0
    outside_warn_share: float = 0.01  # of the cell
    max_items_per_kind: int = 200


@dataclass
class _Issues:
    """Collects issues while the checks run; the report is built from it at the end."""

    items: list[dict[str, Any]] = field(default_factory=list)
    repaired: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        kind: str,
        severity: str,
        message: str,
        *,
        row: int | None = None,
        code: str | None = None,
        location: list[float] | None = None,
        **extra: Any,
    ) -> None:
        where = {"row": row, "code": code, "location": location}
        self.items.append({"kind": kind, "severity": severity, "message": message, **where, **extra})


@dataclass
class _Cells:
    """The layer's rows during validation: `checked` feeds the spatial checks, `kept` is what is returned."""

    rows: list[int]
    codes: list[str | None]
    checked: np.ndarray  # polygonal geometry in 4326 (repaired when needed) or None when unusable
    kept: np.ndarray  # the same where acceptable; None where the row's geometry is an error

    def label(self, i: int) -> str:
        code = self.codes[i]
        return f"row {self.rows[i]} (code '{code}')" if code else f"row {self.rows[i]} (no code)"


def validate_cells(
    gdf: gpd.GeoDataFrame,
    city: BaseGeometry | None,
    *,
    repair: bool = False,
    tol: Tolerances = Tolerances(),
    metric: MetricCRS | None = None,
) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    """Check a grid layer's cells against each other and the city outline; return cleaned cells and report.

    The cleaned frame keeps every row; `geometry` is a valid MultiPolygon in EPSG:4326 (repaired when
    `repair`), or None where the row's geometry is itself an error, and `area_m2` is the area in METRIC
    (the city profile's metric CRS; default: the zone for the middle of the cells, or of the city).
    """
    frame = _prepare_frame(gdf)
    issues = _Issues()
    if frame.attrs.get("crs_assumed"):
        message = (
            "The file declares no coordinate reference system; its coordinates were taken as WGS 84 "
            "longitude/latitude (EPSG:4326). If cells land in the wrong place, add the CRS to the file."
        )
        issues.add("crs_assumed", "warning", message)
    text = frame.attrs.get("text_encoding") or {}
    if text.get("how") == "detected" and text.get("encoding") != "UTF-8":
        message = (
            f"The shapefile has no .cpg saying how its text is encoded; it was read as {text['encoding']}"
            " (it is not UTF-8). Check the names; if they are wrong, give the encoding, or add a .cpg."
        )
        issues.add("encoding_detected", "warning", message)
    cells = _check_geometries(frame, issues, repair)
    _check_codes(cells, issues)

    crs = metric or _metric_for(city if city is not None else cells.checked)
    metric = crs.to_metric(cells.checked)
    areas = shapely.area(metric)
    overlap_area, had_overlap = _check_overlaps(cells, metric, areas, issues, tol, crs)
    gap_area = outside_area = 0.0
    city_metric = _city_in_metres(city, crs)
    if city_metric is None:
        message = (
            "The district layer is not loaded; gap and outside checks were skipped. "
            "Load the districts, then validate again to check coverage."
        )
        issues.add("no_city_outline", "warning", message)
    else:
        gap_area = _check_gaps(metric, city_metric, had_overlap, issues, tol, crs)
        outside_area = _check_outside(cells, metric, areas, city_metric, issues, tol, crs)

    kept_area = np.where(shapely.is_missing(cells.kept), np.nan, areas)
    cleaned = _cleaned_frame(frame, cells.kept, kept_area)
    totals = {
        "cell_area_m2": float(np.nansum(kept_area)),
        "overlap_area_m2": overlap_area,
        "gap_area_m2": gap_area,
        "outside_area_m2": outside_area,
    }
    report = _build_report(issues, len(frame), frame.attrs.get("source_crs") or WGS84, totals, tol)
    if text:  # which encoding the names were read in, and how it was known
        report.summary["text_encoding"] = dict(text)
    report.summary["metric_crs"] = crs.srs
    return cleaned, report


def _metric_for(geoms: BaseGeometry | np.ndarray) -> MetricCRS:
    """The metric CRS for the middle of GEOMS' bounds (any, when there is nothing to measure)."""
    bounds = shapely.total_bounds(geoms)
    if not np.isfinite(bounds).all():
        bounds = np.zeros(4)
    return metric_crs_for((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)


def _prepare_frame(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A copy in EPSG:4326 with a 1-based `row` and text `code` even when the caller built the frame."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError("validate_cells expects a GeoDataFrame (see read_layer_file)")
    attrs = dict(gdf.attrs)
    if gdf.crs is None:
        frame = gdf.set_crs(WGS84)
    elif gdf.crs.to_epsg() != 4326:
        frame = gdf.to_crs(WGS84)
        attrs.setdefault("source_crs", crs_label(gdf.crs))
    else:
        frame = gdf.copy()
    frame = frame.reset_index(drop=True)
    if "row" not in frame.columns:
        frame["row"] = np.arange(1, len(frame) + 1)
    frame["code"] = pd.Series([as_code(v) for v in frame["code"]], dtype=object) if "code" in frame else None
    frame.attrs = attrs
    return frame


def _cleaned_frame(frame: gpd.GeoDataFrame, kept: np.ndarray, area_m2: np.ndarray) -> gpd.GeoDataFrame:
    out = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    out["area_m2"] = area_m2
    cleaned = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(kept, crs=WGS84).values, crs=WGS84)
    cleaned.attrs = dict(frame.attrs)
    return cleaned


# ------------------------------------------------------------------------------------ per-row checks


def _check_geometries(frame: gpd.GeoDataFrame, issues: _Issues, repair: bool) -> _Cells:
    """Empty, non-polygon, out-of-range and invalid geometries; repaired copies where that is possible."""
    geoms = shapely.force_2d(np.asarray(frame.geometry.values, dtype=object))
    n = len(geoms)
    rows, codes = [int(r) for r in frame["row"]], list(frame["code"])
    cells = _Cells(rows, codes, np.full(n, None, dtype=object), np.full(n, None, dtype=object))
    type_ids = shapely.get_type_id(geoms)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    polygonal = np.isin(type_ids, (3, 6)) & ~empty
    in_range = in_lonlat_range(geoms)
    good = polygonal & in_range & shapely.is_valid(geoms)
    cells.checked[good] = cells.kept[good] = as_multipolygons(geoms[good])
    for i in np.flatnonzero(~good):  # only the problem rows are looked at one by one
        geom, where = geoms[i], {"row": rows[i], "code": codes[i]}
        if empty[i]:
            message = f"The cell at {cells.label(i)} has no geometry. Draw its polygon or delete the feature."
            issues.add("empty_geometry", "error", message, **where)
        elif not polygonal[i] and type_ids[i] == 7:  # GeometryCollection: its polygons may be the cell
            _collection(cells, i, geom, issues, repair)
        elif not polygonal[i]:
            message = (
                f"The feature at {cells.label(i)} is a {geom.geom_type}, not a polygon. "
                "Grid cells must be polygons: close the outline or delete the feature."
            )
            issues.add("non_polygon", "error", message, location=lonlat(geom), **where)
        elif not in_range[i]:
            message = (
                f"The cell at {cells.label(i)} has coordinates outside longitude -180…180 / latitude -90…90. "
                "Check the file's coordinate reference system."
            )
            issues.add("bad_coordinates", "error", message, **where)
        else:
            _invalid(cells, i, geom, issues, repair)
    return cells


def _collection(cells: _Cells, i: int, geom: BaseGeometry, issues: _Issues, repair: bool) -> None:
    """A GeometryCollection: its polygons are the cell when repairing, else it is an error."""
    polygons = polygonal_part(geom)
    where = {"row": cells.rows[i], "code": cells.codes[i], "location": lonlat(geom)}
    if polygons is None:
        message = (
            f"The feature at {cells.label(i)} is a GeometryCollection without polygons; cells are polygons."
        )
        issues.add("non_polygon", "error", message, **where)
        return
    cells.checked[i] = polygons
    reason = "GeometryCollection mixing polygons with points or lines"
    if repair:
        cells.kept[i] = polygons
        message = f"The cell at {cells.label(i)} was a {reason}; only its polygons were kept."
        issues.repaired.append({"kind": "non_polygon", "message": message, "reason": reason, **where})
    else:
        message = (
            f"The cell at {cells.label(i)} is a {reason}. "
            "Keep only the polygon, or import with repair to drop the rest."
        )
        issues.add("non_polygon", "error", message, reason=reason, **where)


def _invalid(cells: _Cells, i: int, geom: BaseGeometry, issues: _Issues, repair: bool) -> None:
    """An invalid polygon: reported with GEOS's reason and location, or repaired by make_valid."""
    reason_text = shapely.is_valid_reason(geom)
    reason = reason_text.split("[")[0].strip() or "Invalid geometry"
    location = _reason_location(reason_text) or lonlat(geom)
    fixed = repair_polygon(geom)
    where = {"row": cells.rows[i], "code": cells.codes[i], "location": location, "reason": reason}
    if fixed is None:
        message = (
            f"The cell at {cells.label(i)} is invalid ({reason.lower()}) and cannot be repaired: "
            "no area is left. Redraw it."
        )
        issues.add("invalid_geometry", "error", message, **where)
        return
    cells.checked[i] = fixed  # the spatial checks still see the cell, so one pass reports everything
    if repair:
        cells.kept[i] = fixed
        message = f"The cell at {cells.label(i)} was invalid ({reason.lower()}) and was repaired."
        issues.repaired.append({"kind": "invalid_geometry", "message": message, **where})
    else:
        message = (
            f"The cell at {cells.label(i)} is invalid: {reason.lower()} near {_format_point(location)}. "
            "Fix it in your GIS (e.g. QGIS 'Fix geometries') or import with repair."
        )
        issues.add("invalid_geometry", "error", message, **where)


def _check_codes(cells: _Cells, issues: _Issues) -> None:
    """Every cell needs a code, and no code may be used twice."""
    indices_by_code: dict[str, list[int]] = {}
    for i, code in enumerate(cells.codes):
        if code is None:
            message = f"The cell at row {cells.rows[i]} has no code. Every cell needs a unique code."
            issues.add("missing_code", "error", message, row=cells.rows[i], location=lonlat(cells.checked[i]))
        else:
            indices_by_code.setdefault(code, []).append(i)
    for code, indices in indices_by_code.items():
        if len(indices) > 1:
            _duplicate(cells, code, indices, issues)


def _duplicate(cells: _Cells, code: str, indices: list[int], issues: _Issues) -> None:
    rows = [cells.rows[i] for i in indices]
    listed = ", ".join(map(str, rows[:MAX_ROWS_PER_DUPLICATE]))
    if len(rows) > MAX_ROWS_PER_DUPLICATE:
        listed += f" and {len(rows) - MAX_ROWS_PER_DUPLICATE} more"
    message = (
        f"The code '{code}' is used by {len(rows)} cells (rows {listed}). Every cell needs its own code."
    )
    issues.add(
        "duplicate_code",
        "error",
        message,
        row=rows[0],
        code=code,
        location=lonlat(cells.checked[indices[0]]),
        rows=rows[:MAX_ROWS_PER_DUPLICATE],
        row_count=len(rows),
    )


# ---------------------------------------------------------------------------------- layer-wide checks


def _check_overlaps(
    cells: _Cells, metric: np.ndarray, areas: np.ndarray, issues: _Issues, tol: Tolerances, crs: MetricCRS
) -> tuple[float, bool]:
    """Pairs of cells whose interiors overlap; returns the total overlap (m²) and whether any had area."""
    present = np.flatnonzero(~shapely.is_missing(metric))
    geoms = metric[present]
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pair = left < right  # each unordered pair once, never a cell with itself
    left, right = left[pair], right[pair]
    # Neighbours that only touch intersect in a line: area 0, dropped by the noise threshold below.
    pieces = _overlay(shapely.intersection, geoms[left], geoms[right])
    overlap = shapely.area(pieces)
    had_overlap = bool((overlap > 0).any())
    real = overlap >= tol.overlap_noise_m2
    left, right, pieces, overlap = present[left[real]], present[right[real]], pieces[real], overlap[real]
    share = overlap / np.minimum(areas[left], areas[right])
    is_error = (overlap > tol.overlap_warn_m2) | (share > tol.overlap_warn_share)
    locations = crs.lonlat_many(shapely.point_on_surface(pieces))
    for k in range(len(overlap)):
        i, j = int(left[k]), int(right[k])
        message = (
            f"The cells at {cells.label(i)} and {cells.label(j)} overlap by {_format_area(overlap[k])} "
            f"({share[k]:.2%} of the smaller cell) near {_format_point(locations[k])}. "
            "Move the shared boundary so that each place belongs to one cell."
        )
        issues.add(
            "overlap",
            "error" if is_error[k] else "warning",
            message,
            row=cells.rows[i],
            code=cells.codes[i],
            location=locations[k],
            rows=[cells.rows[i], cells.rows[j]],
            codes=[cells.codes[i], cells.codes[j]],
            area_m2=float(overlap[k]),
            share=float(share[k]),
        )
    return float(overlap.sum()), had_overlap


def _check_gaps(
    metric: np.ndarray,
    city: BaseGeometry,
    had_overlap: bool,
    issues: _Issues,
    tol: Tolerances,
    crs: MetricCRS,
) -> float:
    """Parts of the city covered by no cell; returns their total area (m²) above the noise threshold."""
    cover = _union(metric[~shapely.is_missing(metric)], had_overlap)
    uncovered = polygonal_part(_overlay(shapely.difference, city, cover))
    parts = shapely.get_parts(uncovered) if uncovered is not None else np.array([], dtype=object)
    gap_areas = shapely.area(parts)
    real = gap_areas >= tol.gap_noise_m2
    parts, gap_areas = parts[real], gap_areas[real]
    locations = crs.lonlat_many(shapely.point_on_surface(parts))
    for area, location in zip(gap_areas, locations, strict=True):
        message = (
            f"An area of {_format_area(area)} inside the city near {_format_point(location)} is not covered "
            "by any cell. Extend the neighbouring cells or add a cell, so that every place belongs to a cell."
        )
        severity = "warning" if area < tol.gap_warn_m2 else "error"
        issues.add("gap", severity, message, location=location, area_m2=float(area))
    return float(gap_areas.sum())


def _union(geoms: np.ndarray, had_overlap: bool) -> BaseGeometry:
    """Union of the cells: the fast coverage union when they tile cleanly, else the general union."""
    if len(geoms) == 0:
        return MultiPolygon()
    if not had_overlap:
        try:
            # coverage_union_all only dissolves edges shared vertex for vertex; for cells whose neighbours
            # do not share vertices exactly its result is wrong, so check it before trusting it.
            union = shapely.coverage_union_all(geoms)
            expected = float(shapely.area(geoms).sum())
            if union.is_valid and abs(union.area - expected) <= max(1.0, expected * 1e-9):
                return union
        except shapely.errors.GEOSException:
            pass
    return _overlay(shapely.union_all, geoms)


def _check_outside(
    cells: _Cells,
    metric: np.ndarray,
    areas: np.ndarray,
    city: BaseGeometry,
    issues: _Issues,
    tol: Tolerances,
    crs: MetricCRS,
) -> float:
    """Cells reaching beyond the city outline; returns the total area outside (m²) above the noise."""
    # Only cells the (prepared) city outline does not cover need the costly difference.
    candidates = np.flatnonzero(~shapely.is_missing(metric) & ~shapely.covers(city, metric))
    outside = _overlay(shapely.difference, metric[candidates], city)
    outside_areas = shapely.area(outside)
    real = outside_areas >= tol.outside_noise_m2
    candidates, outside, outside_areas = candidates[real], outside[real], outside_areas[real]
    locations = crs.lonlat_many(shapely.point_on_surface(outside))
    for i, area, location in zip(candidates, outside_areas, locations, strict=True):
        share = min(1.0, float(area / areas[i])) if areas[i] > 0 else 1.0
        where = {"row": cells.rows[i], "code": cells.codes[i], "location": location}
        if share >= 1 - 1e-9:
            message = (
                f"The cell at {cells.label(i)} lies outside the city (near {_format_point(location)}). "
                "Check its coordinates and the file's coordinate reference system."
            )
            issues.add("outside_city", "error", message, area_m2=float(area), share=share, **where)
            continue
        message = (
            f"The cell at {cells.label(i)} extends {_format_area(area)} ({share:.2%} of the cell) beyond the "
            f"city boundary near {_format_point(location)}. Clip it to the city outline."
        )
        warn = area <= tol.outside_warn_m2 and share <= tol.outside_warn_share
        issues.add(
            "outside_city", "warning" if warn else "error", message, area_m2=float(area), share=share, **where
        )
    return float(outside_areas.sum())


def _city_in_metres(city: BaseGeometry | None, crs: MetricCRS) -> BaseGeometry | None:
    """The city outline as valid polygons in metres, prepared for repeated predicates."""
    if city is None:
        return None
    polygons = polygonal_part(shapely.make_valid(shapely.force_2d(city), method="structure"))
    if polygons is None:
        raise ValueError("the city outline has no polygon area")
    metric = crs.to_metric(np.array([polygons], dtype=object))[0]
    if not metric.is_valid:  # reprojection can nudge near-touching rings into each other
        metric = repair_polygon(metric) or metric
    shapely.prepare(metric)
    return metric


def _overlay(operation: Callable[..., Any], *args: Any) -> Any:
    """Run a GEOS overlay; on a robustness failure retry with 1 mm snap-rounding, which always succeeds."""
    try:
        return operation(*args)
    except shapely.errors.GEOSException:
        return operation(*args, grid_size=SNAP_M)


# ------------------------------------------------------------------------------------------- report


def _build_report(
    issues: _Issues, feature_count: int, source_crs: str, totals: dict[str, float], tol: Tolerances
) -> ValidationReport:
    """Counts over every issue; each kind's list cut to `max_items_per_kind`, the biggest problems first."""
    counts: dict[str, dict[str, int]] = {}
    for item in issues.items:
        counts.setdefault(item["kind"], {"error": 0, "warning": 0})[item["severity"]] += 1
    errors, left_out_errors = _truncate([i for i in issues.items if i["severity"] == "error"], tol)
    warnings, left_out_warnings = _truncate([i for i in issues.items if i["severity"] == "warning"], tol)
    repaired, left_out_repaired = _truncate(issues.repaired, tol)
    error_count = sum(c["error"] for c in counts.values())
    summary = {
        "error_count": error_count,
        "warning_count": sum(c["warning"] for c in counts.values()),
        "repaired_count": len(issues.repaired),
        "counts": {kind: counts[kind] for kind in sorted(counts, key=_kind_order)},
        **totals,
        "left_out": {
            "errors": left_out_errors,
            "warnings": left_out_warnings,
            "repaired": left_out_repaired,
        },
    }
    return ValidationReport(
        ok=error_count == 0,
        feature_count=feature_count,
        source_crs=source_crs,
        errors=errors,
        warnings=warnings,
        repaired=repaired,
        summary=summary,
    )


def _truncate(items: list[dict[str, Any]], tol: Tolerances) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Sort by kind, then largest area, then row; keep `max_items_per_kind` per kind and count the rest."""
    ordered = sorted(items, key=lambda i: (_kind_order(i["kind"]), -i.get("area_m2", 0.0), i["row"] or 0))
    kept: list[dict[str, Any]] = []
    per_kind = Counter(item["kind"] for item in ordered)
    seen: Counter[str] = Counter()
    for item in ordered:
        seen[item["kind"]] += 1
        if seen[item["kind"]] <= tol.max_items_per_kind:
            kept.append(item)
    left_out = {
        kind: n - tol.max_items_per_kind for kind, n in per_kind.items() if n > tol.max_items_per_kind
    }
    return kept, left_out


def _kind_order(kind: str) -> int:
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def _reason_location(reason: str) -> list[float] | None:
    """The point in GEOS's 'Self-intersection[118.7 32.0]'."""
    match = _REASON_POINT.search(reason)
    return [float(match.group(1)), float(match.group(2))] if match else None


def _format_point(location: list[float] | None) -> str:
    return f"lon {location[0]:.6f}, lat {location[1]:.6f}" if location else "an unknown location"


def _format_area(area: float) -> str:
    return f"{area:,.0f} m²" if area >= 10 else f"{area:.1f} m²"
