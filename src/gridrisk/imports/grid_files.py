"""Read a city's delivered grid file and validate its cells before anything is written to the database.

`read_layer_file` turns GeoJSON, GeoPackage, zipped Shapefile or GeoParquet into one normalised
GeoDataFrame in EPSG:4326; `validate_cells` checks it (geometry, codes, overlaps, gaps, cells outside the
city) and returns the cleaned cells with a report a city GIS technician can act on. Areas and distances are
computed in metres in EPSG:4549, never in degrees.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry

WGS84 = "EPSG:4326"
METRIC = "EPSG:4549"  # CGCS2000 / 3-degree Gauss-Kruger CM 120E: metres around Nanjing
ACCEPTED_FORMATS = (
    "GeoJSON (.geojson, .json), GeoPackage (.gpkg), zipped Shapefile (.zip with the .shp, .shx, .dbf "
    "and .prj inside) and GeoParquet (.parquet, .geoparquet)"
)
FORMAT_NAMES = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GeoPackage",
    ".zip": "zipped Shapefile",
    ".parquet": "GeoParquet",
    ".geoparquet": "GeoParquet",
}

CODE_FIELDS = ("code", "CODE", "grid_code", "cell_code", "id")
NAME_FIELDS = ("name", "NAME", "grid_name", "cell_name")
POPULATION_FIELDS = ("population", "pop")
DISTRICT_FIELDS = ("district_code", "district")
NAME_EN_FIELDS = ("name_en",)

# Overlay robustness fallback: snap-rounding to 1 mm (in EPSG:4549 metres) always succeeds.
SNAP_M = 0.001
# A duplicate-code issue names at most this many rows (a column of zeros would otherwise list them all).
MAX_ROWS_PER_DUPLICATE = 20
# Checks in report order; also the order of `summary["counts"]`.
KINDS = (
    "crs_assumed",
    "empty_geometry",
    "non_polygon",
    "bad_coordinates",
    "invalid_geometry",
    "missing_code",
    "duplicate_code",
    "overlap",
    "gap",
    "outside_city",
    "no_city_outline",
)
_REASON_POINT = re.compile(r"\[\s*([-+0-9.eE]+)\s+([-+0-9.eE]+)")


class GridFileError(ValueError):
    """A grid file that cannot be read at all (wrong type, unreadable, no code column)."""


# --------------------------------------------------------------------------------------------- reading


@dataclass
class ReadResult:
    """A grid file read into normalised cells in EPSG:4326, with the CRS it was delivered in."""

    gdf: gpd.GeoDataFrame
    source_crs: str
    feature_count: int
    crs_assumed: bool = False  # the file declared no CRS; coordinates were taken as EPSG:4326
    columns: dict[str, str] = field(default_factory=dict)  # role ("code", "name", ...) -> column in the file


def read_layer_file(
    path: str | Path, *, code_field: str | None = None, name_field: str | None = None
) -> ReadResult:
    """Read a delivered grid file into lon/lat cells with normalised columns, so validation sees one shape."""
    path = Path(path)
    raw = _read_raw(path)
    if len(raw) == 0:
        raise GridFileError(f"{path.name} contains no features; a grid file needs one polygon per cell.")
    raw, source_crs, assumed = _to_wgs84(raw, path.name)
    columns = _pick_columns(raw, code_field, name_field)
    gdf = _normalise(raw, columns)
    gdf.attrs.update(source_crs=source_crs, crs_assumed=assumed)
    return ReadResult(gdf, source_crs, len(gdf), assumed, columns)


def _read_raw(path: Path) -> gpd.GeoDataFrame:
    """Dispatch on the file extension and turn every reader failure into a GridFileError."""
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise GridFileError(
            f"{path.name}: unsupported file type '{suffix or '(no extension)'}'. "
            f"Accepted: {ACCEPTED_FORMATS}."
        )
    if not path.is_file():
        raise GridFileError(f"{path.name}: file not found.")
    try:
        gdf = reader(path)
    except GridFileError:
        raise
    except Exception as exc:  # GDAL, pyarrow and zipfile raise many types for damaged input
        # The server-side path means nothing to the person who uploaded the file: show its name only.
        detail = str(exc).replace(str(path.resolve()), path.name).replace(str(path), path.name).rstrip(". ")
        raise GridFileError(
            f"{path.name} could not be read as {FORMAT_NAMES[suffix]}: {detail}. "
            f"Check that the file is complete and really is {FORMAT_NAMES[suffix]}; "
            f"accepted: {ACCEPTED_FORMATS}."
        ) from exc
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise GridFileError(f"{path.name} has no geometry column; a grid file needs one polygon per cell.")
    return gdf


def _read_ogr(path: Path) -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(path)


def _read_gpkg(path: Path) -> gpd.GeoDataFrame:
    """The first spatial table of the GeoPackage (attribute-only tables are skipped)."""
    layers = pyogrio.list_layers(path)
    if len(layers) == 0:
        raise GridFileError(f"{path.name} contains no layers.")
    spatial = [name for name, geometry_type in layers if geometry_type is not None]
    return pyogrio.read_dataframe(path, layer=(spatial or [layers[0][0]])[0])


def _read_zipped_shapefile(path: Path) -> gpd.GeoDataFrame:
    """The first .shp in the archive, read in place through GDAL's /vsizip/ (no extraction)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    # macOS archivers add __MACOSX/._name.shp resource forks that are not shapefiles.
    shapefiles = [n for n in names if n.lower().endswith(".shp") and not n.startswith("__MACOSX/")]
    if not shapefiles:
        raise GridFileError(
            f"{path.name} contains no .shp file. Zip the shapefile's .shp, .shx, .dbf and .prj together "
            f"(found: {', '.join(names[:10]) or 'nothing'})."
        )
    return pyogrio.read_dataframe(f"/vsizip/{path.resolve()}/{shapefiles[0]}")


def _read_parquet(path: Path) -> gpd.GeoDataFrame:
    try:
        import pyarrow  # noqa: F401  (geopandas needs it for Parquet)
    except ImportError as exc:
        raise GridFileError(
            f"{path.name}: GeoParquet cannot be read on this server (the pyarrow package is not installed). "
            "Deliver the grid as GeoPackage or GeoJSON instead."
        ) from exc
    return gpd.read_parquet(path)


_READERS: dict[str, Callable[[Path], gpd.GeoDataFrame]] = {
    ".geojson": _read_ogr,
    ".json": _read_ogr,
    ".gpkg": _read_gpkg,
    ".zip": _read_zipped_shapefile,
    ".parquet": _read_parquet,
    ".geoparquet": _read_parquet,
}


def _to_wgs84(gdf: gpd.GeoDataFrame, name: str) -> tuple[gpd.GeoDataFrame, str, bool]:
    """Transform to EPSG:4326 from the declared CRS; no CRS means lon/lat (refused if it cannot be)."""
    if gdf.crs is None:
        _refuse_projected_without_crs(gdf, name)
        return gdf.set_crs(WGS84), WGS84, True
    source = crs_label(gdf.crs)
    try:
        return gdf.to_crs(WGS84), source, False
    except Exception as exc:  # pyproj raises several types for CRSs it cannot transform
        raise GridFileError(f"{name}: cannot transform from {source} to {WGS84}: {exc}") from exc


def crs_label(crs: CRS) -> str:
    """'EPSG:4549' when the CRS matches a registered code, else its name (e.g. from an ESRI .prj)."""
    authority = crs.to_authority(min_confidence=70)
    return f"{authority[0]}:{authority[1]}" if authority else crs.name


def _refuse_projected_without_crs(gdf: gpd.GeoDataFrame, name: str) -> None:
    """Coordinates in metres taken as degrees would land anywhere: say so instead of guessing."""
    minx, miny, maxx, maxy = gdf.total_bounds
    if all(map(math.isfinite, (minx, miny, maxx, maxy))) and (
        minx < -180 or maxx > 180 or miny < -90 or maxy > 90
    ):
        raise GridFileError(
            f"{name} declares no coordinate reference system, and its coordinates (x {minx:.0f}…{maxx:.0f}, "
            f"y {miny:.0f}…{maxy:.0f}) are not longitude/latitude. Add the CRS to the file (for a Shapefile, "
            "include its .prj in the zip) and upload it again."
        )


def _pick_columns(gdf: gpd.GeoDataFrame, code_field: str | None, name_field: str | None) -> dict[str, str]:
    """Map roles (code, name, population, district_code, name_en) to the file's columns."""
    available = [str(c) for c in gdf.columns if c != gdf.geometry.name]
    roles = {
        "code": _find_column(available, code_field, CODE_FIELDS, "code", required=True),
        "name": _find_column(available, name_field, NAME_FIELDS, "name", required=False),
        "population": _find_column(available, None, POPULATION_FIELDS, "population", required=False),
        "district_code": _find_column(available, None, DISTRICT_FIELDS, "district", required=False),
        "name_en": _find_column(available, None, NAME_EN_FIELDS, "English name", required=False),
    }
    return {role: column for role, column in roles.items() if column is not None}


def _find_column(
    available: list[str], requested: str | None, candidates: Iterable[str], role: str, *, required: bool
) -> str | None:
    """The requested column, else the first candidate present (exact spelling first, then any case)."""
    listing = ", ".join(available) or "(none)"
    if requested is not None:
        if requested not in available:
            raise GridFileError(
                f"the {role} field '{requested}' is not in the file; available columns: {listing}."
            )
        return requested
    for candidate in candidates:
        if candidate in available:
            return candidate
    by_lower = {c.lower(): c for c in reversed(available)}
    for candidate in candidates:
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    if required:
        raise GridFileError(
            f"no {role} column found: looked for {', '.join(candidates)}; available columns: {listing}. "
            f"Name the column that holds the cell {role}s explicitly."
        )
    return None


def _normalise(raw: gpd.GeoDataFrame, columns: dict[str, str]) -> gpd.GeoDataFrame:
    """Build the row/code/name/population/district_code/name_en/geometry frame with clean Python values."""

    def values(role: str, convert: Callable[[Any], Any]) -> list[Any]:
        column = columns.get(role)
        return [convert(v) for v in raw[column]] if column else [None] * len(raw)

    codes = values("code", as_code)
    names = [name or code for name, code in zip(values("name", _as_text), codes, strict=True)]
    data = {
        "row": np.arange(1, len(raw) + 1),
        "code": pd.Series(codes, dtype=object),
        "name": pd.Series(names, dtype=object),
        "population": pd.Series(values("population", _as_int), dtype=object),
        "district_code": pd.Series(values("district_code", as_code), dtype=object),
        "name_en": pd.Series(values("name_en", _as_text), dtype=object),
    }
    return gpd.GeoDataFrame(data, geometry=np.asarray(raw.geometry.values), crs=WGS84)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # arrays and other non-scalars are values, not missing
        return False


def as_code(value: Any) -> str | None:
    """A cell code as text: 101 and 101.0 become '101', text is stripped, empty or NaN becomes None."""
    if _is_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return str(int(value)) if float(value).is_integer() else str(float(value))
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return str(value).strip() or None


def _as_text(value: Any) -> str | None:
    if _is_missing(value):
        return None
    return str(value).strip() or None


def _as_int(value: Any) -> int | None:
    """Population as an int; blanks and unparseable text become None."""
    if _is_missing(value) or isinstance(value, bool | np.bool_):
        return None
    try:
        number = float(str(value).replace(",", "").strip()) if isinstance(value, str) else float(value)
    except ValueError:
        return None
    return int(round(number)) if math.isfinite(number) else None


# ------------------------------------------------------------------------------------------ validation


@dataclass(frozen=True)
class Tolerances:
    """Where noise ends and a warning becomes an error; all areas in m² (EPSG:4549)."""

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
class ValidationReport:
    """What is wrong with a grid layer, for the technician who delivered it; `ok` means no errors."""

    ok: bool
    feature_count: int
    source_crs: str
    errors: list[dict[str, Any]]
    warnings: list[dict[str, Any]]
    repaired: list[dict[str, Any]]
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: areas rounded to 0.01 m², shares to 0.0001, locations to 7 decimals."""
        return {
            "ok": self.ok,
            "feature_count": int(self.feature_count),
            "source_crs": self.source_crs,
            "errors": [_jsonable(item) for item in self.errors],
            "warnings": [_jsonable(item) for item in self.warnings],
            "repaired": [_jsonable(item) for item in self.repaired],
            "summary": _jsonable(self.summary),
        }


def _jsonable(value: Any, key: str = "") -> Any:
    """Plain Python values with the report's rounding; NaN and infinity become None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v, key) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return None
        return round(number, 7 if key == "location" else 4 if key == "share" else 2)
    return value


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
) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    """Check a grid layer's cells against each other and the city outline; return cleaned cells and report.

    The cleaned frame keeps every row; `geometry` is a valid MultiPolygon in EPSG:4326 (repaired when
    `repair`), or None where the row's geometry is itself an error, and `area_m2` is the EPSG:4549 area.
    """
    frame = _prepare_frame(gdf)
    issues = _Issues()
    if frame.attrs.get("crs_assumed"):
        message = (
            "The file declares no coordinate reference system; its coordinates were taken as WGS 84 "
            "longitude/latitude (EPSG:4326). If cells land in the wrong place, add the CRS to the file."
        )
        issues.add("crs_assumed", "warning", message)
    cells = _check_geometries(frame, issues, repair)
    _check_codes(cells, issues)

    metric = to_metric(cells.checked)
    areas = shapely.area(metric)
    overlap_area, had_overlap = _check_overlaps(cells, metric, areas, issues, tol)
    gap_area = outside_area = 0.0
    city_metric = _city_in_metres(city)
    if city_metric is None:
        message = (
            "The district layer is not loaded; gap and outside checks were skipped. "
            "Load the districts, then validate again to check coverage."
        )
        issues.add("no_city_outline", "warning", message)
    else:
        gap_area = _check_gaps(metric, city_metric, had_overlap, issues, tol)
        outside_area = _check_outside(cells, metric, areas, city_metric, issues, tol)

    kept_area = np.where(shapely.is_missing(cells.kept), np.nan, areas)
    cleaned = _cleaned_frame(frame, cells.kept, kept_area)
    totals = {
        "cell_area_m2": float(np.nansum(kept_area)),
        "overlap_area_m2": overlap_area,
        "gap_area_m2": gap_area,
        "outside_area_m2": outside_area,
    }
    report = _build_report(issues, len(frame), frame.attrs.get("source_crs") or WGS84, totals, tol)
    return cleaned, report


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
    in_range = _in_lonlat_range(geoms)
    good = polygonal & in_range & shapely.is_valid(geoms)
    cells.checked[good] = cells.kept[good] = _as_multipolygons(geoms[good])
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
            issues.add("non_polygon", "error", message, location=_lonlat(geom), **where)
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
    where = {"row": cells.rows[i], "code": cells.codes[i], "location": _lonlat(geom)}
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
    location = _reason_location(reason_text) or _lonlat(geom)
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
        multi = _as_multipolygon_or_none(shapely.make_valid(multi, method="structure", keep_collapsed=False))
    return multi


def _as_multipolygon_or_none(geom: BaseGeometry) -> MultiPolygon | None:
    if geom.geom_type == "GeometryCollection":
        return polygonal_part(geom)
    return (
        _as_multipolygon(geom)
        if geom.geom_type in ("Polygon", "MultiPolygon") and not geom.is_empty
        else None
    )


def _as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    return geom if geom.geom_type == "MultiPolygon" else MultiPolygon([geom])


def _as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    """Polygons wrapped as one-part MultiPolygons, vectorised; MultiPolygons unchanged."""
    out = geoms.copy()
    single = shapely.get_type_id(geoms) == 3
    out[single] = shapely.multipolygons(geoms[single], indices=np.arange(int(single.sum())))
    return out


def _in_lonlat_range(geoms: np.ndarray) -> np.ndarray:
    """Per geometry: all coordinates finite and within lon -180…180, lat -90…90 (False for empty)."""
    minx, miny, maxx, maxy = shapely.bounds(geoms).T
    with np.errstate(invalid="ignore"):  # NaN bounds of empty geometries compare False
        return (minx >= -180) & (maxx <= 180) & (miny >= -90) & (maxy <= 90)


def _check_codes(cells: _Cells, issues: _Issues) -> None:
    """Every cell needs a code, and no code may be used twice."""
    indices_by_code: dict[str, list[int]] = {}
    for i, code in enumerate(cells.codes):
        if code is None:
            message = f"The cell at row {cells.rows[i]} has no code. Every cell needs a unique code."
            issues.add(
                "missing_code", "error", message, row=cells.rows[i], location=_lonlat(cells.checked[i])
            )
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
        location=_lonlat(cells.checked[indices[0]]),
        rows=rows[:MAX_ROWS_PER_DUPLICATE],
        row_count=len(rows),
    )


# ---------------------------------------------------------------------------------- layer-wide checks


def _check_overlaps(
    cells: _Cells, metric: np.ndarray, areas: np.ndarray, issues: _Issues, tol: Tolerances
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
    locations = _lonlat_many(shapely.point_on_surface(pieces))
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
    metric: np.ndarray, city: BaseGeometry, had_overlap: bool, issues: _Issues, tol: Tolerances
) -> float:
    """Parts of the city covered by no cell; returns their total area (m²) above the noise threshold."""
    cover = _union(metric[~shapely.is_missing(metric)], had_overlap)
    uncovered = polygonal_part(_overlay(shapely.difference, city, cover))
    parts = shapely.get_parts(uncovered) if uncovered is not None else np.array([], dtype=object)
    gap_areas = shapely.area(parts)
    real = gap_areas >= tol.gap_noise_m2
    parts, gap_areas = parts[real], gap_areas[real]
    locations = _lonlat_many(shapely.point_on_surface(parts))
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
    cells: _Cells, metric: np.ndarray, areas: np.ndarray, city: BaseGeometry, issues: _Issues, tol: Tolerances
) -> float:
    """Cells reaching beyond the city outline; returns the total area outside (m²) above the noise."""
    # Only cells the (prepared) city outline does not cover need the costly difference.
    candidates = np.flatnonzero(~shapely.is_missing(metric) & ~shapely.covers(city, metric))
    outside = _overlay(shapely.difference, metric[candidates], city)
    outside_areas = shapely.area(outside)
    real = outside_areas >= tol.outside_noise_m2
    candidates, outside, outside_areas = candidates[real], outside[real], outside_areas[real]
    locations = _lonlat_many(shapely.point_on_surface(outside))
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


def _city_in_metres(city: BaseGeometry | None) -> BaseGeometry | None:
    """The city outline as valid polygons in EPSG:4549, prepared for repeated predicates."""
    if city is None:
        return None
    polygons = polygonal_part(shapely.make_valid(shapely.force_2d(city), method="structure"))
    if polygons is None:
        raise ValueError("the city outline has no polygon area")
    metric = to_metric(np.array([polygons], dtype=object))[0]
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


# ------------------------------------------------------------------------------------- coordinates


@lru_cache(maxsize=2)
def _transformer(source: str, target: str) -> Transformer:
    return Transformer.from_crs(source, target, always_xy=True)


def _transform_xy(source: str, target: str) -> Callable[[np.ndarray], np.ndarray]:
    def apply(xy: np.ndarray) -> np.ndarray:
        x, y = _transformer(source, target).transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return apply


def to_metric(geoms: np.ndarray) -> np.ndarray:
    """EPSG:4326 geometries to EPSG:4549 metres, vectorised (None stays None)."""
    return shapely.transform(geoms, _transform_xy(WGS84, METRIC))


def _lonlat_many(points_metric: np.ndarray) -> list[list[float] | None]:
    """EPSG:4549 points to [lon, lat] pairs (None for empty points)."""
    if len(points_metric) == 0:
        return []
    lon, lat = _transformer(METRIC, WGS84).transform(
        shapely.get_x(points_metric), shapely.get_y(points_metric)
    )
    return [
        [float(x), float(y)] if math.isfinite(x) and math.isfinite(y) else None
        for x, y in zip(lon, lat, strict=True)
    ]


def _lonlat(geom: BaseGeometry | None) -> list[float] | None:
    """A representative [lon, lat] of a geometry already in EPSG:4326."""
    if geom is None or geom.is_empty:
        return None
    try:
        point = shapely.point_on_surface(geom)
    except shapely.errors.GEOSException:  # some invalid shapes defeat point_on_surface
        point = shapely.centroid(shapely.envelope(geom))
    return None if point.is_empty else [float(point.x), float(point.y)]


def _reason_location(reason: str) -> list[float] | None:
    """The point in GEOS's 'Self-intersection[118.7 32.0]'."""
    match = _REASON_POINT.search(reason)
    return [float(match.group(1)), float(match.group(2))] if match else None


def _format_point(location: list[float] | None) -> str:
    return f"lon {location[0]:.6f}, lat {location[1]:.6f}" if location else "an unknown location"


def _format_area(area: float) -> str:
    return f"{area:,.0f} m²" if area >= 10 else f"{area:.1f} m²"
