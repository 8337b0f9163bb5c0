"""Reading registry import files: CSV or Excel (lon/lat or WKT columns), GeoJSON, GeoPackage, into raw rows.

Nothing here knows a kind beyond its column names: every row comes out as a `Record` holding the
values as read (names normalised through the kind's aliases) and where its location is. Checking the
values is the Create model's work (`registry.bulk`). Only the file's structure is judged here: a
missing header column, a CSV that cannot be parsed, a FeatureCollection without features.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from gridrisk.imports.bulk_import import RowError

# Location columns every kind's CSV may use, by their accepted names.
LOCATION = {"lon": "lon", "lng": "lon", "longitude": "lon", "lat": "lat", "latitude": "lat", "wkt": "wkt"}
WGS84 = CRS.from_epsg(4326)
HEADER_SEARCH = 10  # a spreadsheet's header row is looked for among its first non-empty rows


@dataclass
class Record:
    """One raw input row: the field values as read, plus its row number and location."""

    row: int
    values: dict[str, Any]
    geometry: Any = None  # a GeoJSON geometry dict, a shapely geometry, or None (CSV: lon/lat or wkt)
    line: int | None = None  # CSV: the file line (the header is line 1)
    geojson: bool = False  # a feature: its location is its geometry
    problem: tuple[str, str] | None = None  # (field, problem) when the row itself is malformed


@dataclass
class Parsed:
    records: list[Record]
    crs: CRS | None = None  # the file's CRS when not WGS 84
    file_errors: list[RowError] = field(default_factory=list)


def column_names(columns: tuple[str, ...], aliases: dict[str, str]) -> dict[str, str]:
    """Lower-cased file name → field, for the kind's COLUMNS and ALIASES and the location columns."""
    names = {c.lower(): c for c in columns}
    names.update((a.lower(), f) for a, f in aliases.items())
    names.update(LOCATION)
    return names


def read_file(data: bytes, fmt: str, names: dict[str, str], required: tuple[str, ...]) -> Parsed:
    """Parse DATA as FMT (csv, xlsx, geojson or gpkg) into raw records (no checks beyond the structure)."""
    if fmt == "csv":
        return _read_csv(data, names, required)
    if fmt == "xlsx":
        return _read_spreadsheet(data, names, required)
    if fmt == "gpkg":
        return _read_gpkg(data, names, required)
    return _read_geojson(data, names)


def _decode(data: bytes) -> str | None:
    """The text of a CSV: UTF-8 (with or without the BOM spreadsheets write), else GB 18030."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _missing(seen: set[str], required: tuple[str, ...], location: bool) -> list[str]:
    missing = [c for c in required if c not in seen]
    if location and not ({"lon", "lat"} <= seen or "wkt" in seen):
        missing.append("lon and lat (or wkt)")
    return missing


def _read_csv(data: bytes, names: dict[str, str], required: tuple[str, ...]) -> Parsed:
    text = _decode(data)
    if text is None:
        problem = "The file is neither UTF-8 nor GB 18030 text; save the CSV as UTF-8."
        return Parsed([], file_errors=[RowError(None, "file", problem)])
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    rows = 0  # rows read so far, blank lines aside

    def lines() -> Iterable[tuple[int, list[str]]]:
        nonlocal rows
        for cells in reader:
            rows += not _blank(cells)
            yield reader.line_num, cells

    try:
        return _records(header, lines(), names, required, "file")
    except csv.Error as exc:  # an unterminated quote swallowing the file, a field over 128 KiB, ...
        problem = f"The CSV cannot be read past line {reader.line_num}: {exc}."
        return Parsed([], file_errors=[RowError(rows + 1, "file", problem, line=reader.line_num)])


def _blank(cells: list[str]) -> bool:
    return not cells or (len(cells) == 1 and not cells[0].strip())


def _read_spreadsheet(data: bytes, names: dict[str, str], required: tuple[str, ...]) -> Parsed:
    """The first sheet of an Excel workbook (.xlsx, .xls), read as a CSV would be: a header row, then rows.

    Title rows above the header are passed over. Cells become the text a CSV would hold (whole
    numbers without ".0", dates in ISO 8601), so the checks, messages and report are the CSV's; a
    row's `line` is its row number in Excel.
    """
    from python_calamine import CalamineError, CalamineWorkbook

    try:
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        rows = book.get_sheet_by_index(0).to_python(skip_empty_area=False)
    except (CalamineError, ValueError, IndexError) as exc:
        problem = f"The file is not a readable Excel workbook: {str(exc).strip().splitlines()[0]}."
        return Parsed([], file_errors=[RowError(None, "file", problem)])
    numbered = []
    for i, row in enumerate(rows):
        cells = [_cell_text(v) for v in row]
        while cells and not cells[-1].strip():  # the sheet's used range, not the row's content
            cells.pop()
        if cells:
            numbered.append((i + 1, cells))
    # Registers often open with a title row or two (南京市风险源台账, a date): the header is the
    # first row naming every required column, else the first row (whose gaps the error then names).
    at = next(
        (k for k, (_, cells) in enumerate(numbered[:HEADER_SEARCH]) if _names_all(cells, names, required)), 0
    )
    header = numbered[at][1] if numbered else None
    return _records(header, iter(numbered[at + 1 :]), names, required, "sheet")


def _names_all(cells: list[str], names: dict[str, str], required: tuple[str, ...]) -> bool:
    return set(required) <= {names.get(c.strip().lower()) for c in cells}


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as CSV text: 32010001.0 → "32010001", a date → "2026-05-01"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return "" if value is None else str(value)


def _records(
    header: list[str] | None,
    rows: Iterable[tuple[int, list[str]]],
    names: dict[str, str],
    required: tuple[str, ...],
    what: str,
) -> Parsed:
    """Rows of text cells under a header (CSV lines, spreadsheet rows) as records, or the header's errors."""
    if not header:
        problem = f"The {what} is empty; it needs a header row."
        return Parsed([], file_errors=[RowError(None, "file", problem)])
    fields: list[str | None] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for col in header:
        name = names.get(col.strip().lower())
        if name is not None and name in seen:
            errors.append(RowError(None, col, f"The column '{col}' appears twice in the header."))
        seen.add(name or "")
        fields.append(name)
    missing = _missing(seen, required, location=True)
    if missing:
        problem = f"The header lacks the column(s): {', '.join(missing)}."
        errors.append(RowError(None, "header", problem, ",".join(header)))
    if errors:
        return Parsed([], file_errors=errors)
    keyed = [(i, f) for i, f in enumerate(fields) if f]
    width = len(header)
    records = []
    for line, cells in rows:
        if _blank(cells):
            continue
        rec = Record(len(records) + 1, {f: cells[i] for i, f in keyed if i < len(cells)}, line=line)
        if len(cells) > width:
            extra = f"The row has {len(cells) - width} more value(s) than the header has columns."
            rec.problem = ("row", extra)
        records.append(rec)
    return Parsed(records)


def _read_geojson(data: bytes, names: dict[str, str]) -> Parsed:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Parsed([], file_errors=[RowError(None, "file", f"The file is not valid JSON: {exc}.")])
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        problem = f"The file must be a GeoJSON FeatureCollection, not {kind!r}."
        return Parsed([], file_errors=[RowError(None, "file", problem)])
    crs, crs_error = _geojson_crs(doc.get("crs"))
    if crs_error:
        return Parsed([], file_errors=[crs_error])
    features = doc.get("features")
    if not isinstance(features, list):
        return Parsed(
            [], file_errors=[RowError(None, "features", "The FeatureCollection has no feature list.")]
        )
    records = []
    for n, feat in enumerate(features, start=1):
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            records.append(
                Record(n, {}, geojson=True, problem=("feature", "The item is not a GeoJSON Feature."))
            )
            continue
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            problem = ("properties", "The feature's properties must be an object.")
            records.append(Record(n, {}, geojson=True, problem=problem))
            continue
        # Known names normalised; the rest kept as they are (a kind may read an exported shape).
        values = {names.get(k.lower(), k): v for k, v in props.items()}
        if "code" not in values and isinstance(feat.get("id"), str):
            values["code"] = feat["id"]
        records.append(Record(n, values, geometry=feat.get("geometry"), geojson=True))
    return Parsed(records, crs=crs)


def _geojson_crs(member: Any) -> tuple[CRS | None, RowError | None]:
    """The CRS a (pre-RFC 7946) `crs` member names; None for WGS 84 or when absent."""
    if member is None:
        return None, None
    name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
    if not isinstance(name, str):
        return None, RowError(None, "crs", "The crs member must name a CRS (type 'name').", str(member)[:200])
    if name.upper().replace("::", ":").endswith(("CRS84", "EPSG:4326")):
        return None, None
    try:
        crs = CRS.from_user_input(name)
    except CRSError:
        return None, RowError(None, "crs", f"Unknown coordinate reference system '{name}'.", name)
    return (None if crs.equals(WGS84, ignore_axis_order=True) else crs), None


def _read_gpkg(data: bytes, names: dict[str, str], required: tuple[str, ...]) -> Parsed:
    """The first layer with geometries of a GeoPackage; its CRS (none declared: WGS 84)."""
    import pyogrio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "non conformant file extension": read from memory
        try:
            layers = pyogrio.list_layers(io.BytesIO(data))
            spatial = [str(name) for name, gtype in layers if gtype is not None]
            if not spatial:
                return Parsed(
                    [], file_errors=[RowError(None, "file", "The GeoPackage has no layer with geometries.")]
                )
            meta, _, wkb, columns = pyogrio.raw.read(io.BytesIO(data), layer=spatial[0])
        except Exception as exc:  # GDAL reports an unreadable file in several ways
            problem = f"The file is not a readable GeoPackage: {str(exc).strip().splitlines()[0]}."
            return Parsed([], file_errors=[RowError(None, "file", problem)])
    fields = [names.get(str(f).lower()) for f in meta["fields"]]
    missing = _missing({f for f in fields if f}, required, location=False)
    if missing:
        problem = f"The layer '{spatial[0]}' lacks the field(s): {', '.join(missing)}."
        return Parsed([], file_errors=[RowError(None, "header", problem, ",".join(meta["fields"]))])
    crs = None
    if meta.get("crs"):
        crs = CRS.from_user_input(meta["crs"])
        crs = None if crs.equals(WGS84, ignore_axis_order=True) else crs
    geoms = shapely.from_wkb(np.asarray(wkb, dtype=object), on_invalid="ignore") if wkb is not None else None
    lists = [(f, col.tolist()) for f, col in zip(fields, columns, strict=True) if f and f not in LOCATION]
    records = []
    for i in range(len(geoms) if geoms is not None else 0):
        values = {f: _gpkg_value(col[i]) for f, col in lists}
        records.append(Record(i + 1, values, geometry=geoms[i], geojson=True))
    return Parsed(records, crs=crs)


def _gpkg_value(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v
