"""Read a city's delivered grid file and validate its cells before anything is written to the database.

`read_layer_file` turns GeoJSON, GeoPackage, zipped Shapefile or GeoParquet into one normalised
GeoDataFrame in EPSG:4326; `validate_cells` checks it (geometry, codes, overlaps, gaps, cells outside the
city) and returns the cleaned cells with a report a city GIS technician can act on. Areas and distances are
computed in metres in the city's metric CRS, never in degrees.
"""

from __future__ import annotations

import math
import re
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyproj import CRS

from gridrisk.geometry.polygons import WGS84
from gridrisk.imports.text_encoding import RAW, TextEncodingError, decode_raw_text

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

# Overlay robustness fallback: snap-rounding to 1 mm (in metres of the metric CRS) always succeeds.
SNAP_M = 0.001
# A duplicate-code issue names at most this many rows (a column of zeros would otherwise list them all).
MAX_ROWS_PER_DUPLICATE = 20
# Checks in report order; also the order of `summary["counts"]`.
KINDS = (
    "crs_assumed",
    "encoding_detected",
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
    # The attribute text's encoding and how it was known: "format" (the format fixes it), "cpg",
    # "given" (by the caller) or "detected" (a shapefile without .cpg: UTF-8, else GB18030).
    text_encoding: dict[str, str] = field(default_factory=dict)


def read_layer_file(
    path: str | Path,
    *,
    code_field: str | None = None,
    name_field: str | None = None,
    encoding: str | None = None,
) -> ReadResult:
    """Read a delivered grid file into lon/lat cells with normalised columns, so validation sees one shape.

    ENCODING names the attribute text's encoding of a shapefile (otherwise its .cpg, else detected).
    """
    path = Path(path)
    raw = _read_raw(path, encoding)
    text_encoding = raw.attrs.get("text_encoding") or {"encoding": "UTF-8", "how": "format"}
    if len(raw) == 0:
        raise GridFileError(f"{path.name} contains no features; a grid file needs one polygon per cell.")
    raw, source_crs, assumed = _to_wgs84(raw, path.name)
    columns = _pick_columns(raw, code_field, name_field)
    gdf = _normalise(raw, columns)
    gdf.attrs.update(source_crs=source_crs, crs_assumed=assumed, text_encoding=text_encoding)
    return ReadResult(gdf, source_crs, len(gdf), assumed, columns, text_encoding)


def _read_raw(path: Path, encoding: str | None = None) -> gpd.GeoDataFrame:
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
        gdf = _read_zipped_shapefile(path, encoding) if suffix == ".zip" else reader(path)
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


def _read_zipped_shapefile(path: Path, encoding: str | None = None) -> gpd.GeoDataFrame:
    """The first .shp in the archive, read in place through GDAL's /vsizip/ (no extraction).

    Its text's encoding: ENCODING when given, else what a .cpg beside it says (GDAL reads it), else
    detected (text_encoding.py). Given or detected, the .dbf is read byte for byte and decoded here:
    Python knows more encodings, and their names, than GDAL's recoding does.
    """
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        # macOS archivers add __MACOSX/._name.shp resource forks that are not shapefiles.
        shapefiles = [n for n in names if n.lower().endswith(".shp") and not n.startswith("__MACOSX/")]
        if not shapefiles:
            raise GridFileError(
                f"{path.name} contains no .shp file. Zip the shapefile's .shp, .shx, .dbf and .prj "
                f"together (found: {', '.join(names[:10]) or 'nothing'})."
            )
        shp = shapefiles[0]
        cpg = next((n for n in names if n.lower() == shp[:-4].lower() + ".cpg"), None)
        declared = (archive.read(cpg).decode("ascii", "replace").strip() or "?") if cpg else None
    source = f"/vsizip/{path.resolve()}/{shp}"
    if encoding is None and declared is not None:
        gdf = pyogrio.read_dataframe(source)
        gdf.attrs["text_encoding"] = {"encoding": declared, "how": "cpg"}
        return gdf
    if encoding is not None:
        try:
            "".encode(encoding)
        except LookupError as exc:
            raise GridFileError(
                f"unknown text encoding '{encoding}'; e.g. UTF-8, GB18030, GBK, Big5"
            ) from exc
    try:
        gdf, used = decode_raw_text(pyogrio.read_dataframe(source, encoding=RAW), path.name, encoding)
    except TextEncodingError as exc:
        raise GridFileError(str(exc)) from exc
    gdf.attrs["text_encoding"] = {"encoding": used, "how": "detected" if encoding is None else "given"}
    return gdf


def _read_parquet(path: Path) -> gpd.GeoDataFrame:
    try:
        import pyarrow  # noqa: F401  (geopandas needs it for Parquet)
    except ImportError as exc:
        raise GridFileError(
            f"{path.name}: GeoParquet cannot be read on this server (the pyarrow package is not installed). "
            "Deliver the grid as GeoPackage or GeoJSON instead."
        ) from exc
    return gpd.read_parquet(path)


_READERS: dict[str, Callable[..., gpd.GeoDataFrame]] = {
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
    """'EPSG:4490' when the CRS matches a registered code, else its name (e.g. from an ESRI .prj)."""
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
