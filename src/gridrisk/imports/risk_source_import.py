"""Bulk import of risk sources (CSV or GeoJSON): validate every row, then upsert all in one statement.

The import is all-or-nothing. Every row is checked in Python first (fields, value sets, geometry),
then the rows are COPYed into a temporary staging table where the checks that need the database
run set-based (inside the city? plate code taken?). Only when no row has an error is the registry
written, with ONE `INSERT ... SELECT ... ON CONFLICT (code) DO UPDATE`: the triggers of migration
0002 then compute each level, assign the sources to cells, recolour every touched cell once and
write the history, all inside that statement, so the map is current at commit.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psycopg
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape

from gridrisk.imports.bulk_import import (
    ImportResult,
    RowError,
    detect_format,
)
from gridrisk.imports.bulk_import import rejected as _rejected
from gridrisk.models.risk_sources import LEC_C, LEC_E, LEC_L

Progress = Callable[[str, int, int], None]

LEVELS = ("red", "orange", "yellow", "blue")
STATUSES = ("active", "suspended", "closed")

# File column (lower-cased) → field. The L/E/C/S columns may be written either case.
COLUMN_ALIASES = {
    "code": "code",
    "name": "name",
    "category": "category",
    "lon": "lon",
    "lng": "lon",
    "longitude": "lon",
    "lat": "lat",
    "latitude": "lat",
    "wkt": "wkt",
    "address": "address",
    "plate_code": "plate_code",
    "enterprise": "enterprise",
    "department": "department",
    "method": "method",
    "l": "L",
    "e": "E",
    "c": "C",
    "s": "S",
    "level": "level",
    "override_level": "level",
    "reason": "reason",
    "override_reason": "reason",
    "status": "status",
}
REQUIRED_COLUMNS = ("code", "name", "category")
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
MAX_LEN = {
    "code": 64,
    "name": 200,
    "plate_code": 64,
    "address": 500,
    "enterprise": 500,
    "department": 500,
    "reason": 2000,
}
LEC_SETS = {"L": frozenset(LEC_L), "E": frozenset(LEC_E), "C": frozenset(LEC_C)}
LEC_ALLOWED = {k: ", ".join(f"{x:g}" for x in sorted(v, reverse=True)) for k, v in LEC_SETS.items()}
GEOM_TYPES = ("Point", "Polygon", "MultiPolygon")

# The columns the file sets, in staging-table and INSERT order.
SOURCE_COLUMNS = (
    "code",
    "name",
    "category",
    "address",
    "plate_code",
    "enterprise",
    "department",
    "method",
    "l",
    "e",
    "c",
    "s",
    "override_level",
    "override_reason",
    "status",
)

STAGE_DDL = """
CREATE TEMP TABLE risk_source_stage (
    row_no integer NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    category text NOT NULL,
    address text,
    plate_code text,
    enterprise text,
    department text,
    method text NOT NULL,
    l double precision,
    e double precision,
    c double precision,
    s double precision,
    override_level text,
    override_reason text,
    status text NOT NULL,
    geom geometry(Geometry, 4326) NOT NULL
) ON COMMIT DROP
"""

# The city test uses the subdivided outline: one index probe against a few vertices per row.
OUTSIDE_CITY_SQL = """
SELECT s.row_no, s.code, ST_AsText(ST_PointOnSurface(s.geom)) AS at
FROM risk_source_stage s
WHERE NOT EXISTS (SELECT 1 FROM city_parts p WHERE p.geom && s.geom AND ST_Intersects(p.geom, s.geom))
ORDER BY s.row_no
"""

# A plate held by another source would break the unique index mid-statement; report it per row.
# (Moving a plate from one source to another in the same file is reported too: the unique index
# is checked row by row, so whether it succeeds would depend on the row order.)
PLATE_TAKEN_SQL = """
SELECT s.row_no, s.plate_code, r.code AS holder
FROM risk_source_stage s
JOIN risk_sources r ON r.plate_code = s.plate_code AND r.code <> s.code
ORDER BY s.row_no
"""

# `excluded` carries the row as the BEFORE INSERT trigger left it (score, level computed and the
# unused assessment values nulled), so comparing it with the stored row is like for like; the
# WHERE makes an unchanged row a no-op: no version bump, no history row, no recolour.
# ORDER BY code: concurrent imports then lock rows in the same order and cannot deadlock.
UPSERT_SQL = """
WITH up AS (
    INSERT INTO risk_sources AS rs
        (code, name, category, address, plate_code, enterprise, department, method, l, e, c, s,
         override_level, override_reason, status, geom, created_by, updated_by)
    SELECT code, name, category, address, plate_code, enterprise, department, method, l, e, c, s,
           override_level, override_reason, status, geom, %(actor)s, %(actor)s
    FROM risk_source_stage
    ORDER BY code
    ON CONFLICT (code) DO UPDATE SET
        name = excluded.name, category = excluded.category, address = excluded.address,
        plate_code = excluded.plate_code, enterprise = excluded.enterprise,
        department = excluded.department, method = excluded.method,
        l = excluded.l, e = excluded.e, c = excluded.c, s = excluded.s,
        override_level = excluded.override_level, override_reason = excluded.override_reason,
        status = excluded.status, geom = excluded.geom,
        version = rs.version + 1, updated_at = now(), updated_by = excluded.updated_by
    WHERE (rs.name, rs.category, rs.address, rs.plate_code, rs.enterprise, rs.department, rs.method,
           rs.l, rs.e, rs.c, rs.s, rs.override_level, rs.override_reason, rs.status, ST_AsEWKB(rs.geom))
          IS DISTINCT FROM
          (excluded.name, excluded.category, excluded.address, excluded.plate_code, excluded.enterprise,
           excluded.department, excluded.method, excluded.l, excluded.e, excluded.c, excluded.s,
           excluded.override_level, excluded.override_reason, excluded.status, ST_AsEWKB(excluded.geom))
    -- xmax is 0 on a freshly inserted row version, the updating transaction's id on an update.
    RETURNING (rs.xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated
FROM up
"""

# Bulk imports queue behind each other instead of contending for the same cells.
IMPORT_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('gridrisk:risk_source_import'))"


# ---------------------------------------------------------------------------------------------
# Reading


@dataclass
class SourceRecord:
    """One raw input row: the field values as read, plus its row number and location."""

    row: int
    values: dict[str, Any]
    geometry: Any = None  # a GeoJSON geometry dict, or a shapely geometry (demo), or None (lon/lat/wkt)
    line: int | None = None
    geojson: bool = False  # a feature: its location is its geometry


@dataclass
class _Parsed:
    records: list[SourceRecord]
    crs: CRS | None = None  # source CRS when not WGS 84 (GeoJSON `crs` member)
    file_errors: list[RowError] = field(default_factory=list)


def _decode(data: bytes) -> str | None:
    """The text of a CSV: UTF-8 (with or without the BOM spreadsheets write), else GB 18030."""
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _read_csv(data: bytes) -> _Parsed:
    text = _decode(data)
    if text is None:
        problem = "The file is neither UTF-8 nor GB 18030 text; save the CSV as UTF-8."
        return _Parsed([], file_errors=[RowError(None, "file", problem)])
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        return _Parsed([], file_errors=[RowError(None, "file", "The file is empty; it needs a header row.")])
    fields: list[str | None] = []
    errors: list[RowError] = []
    seen: set[str] = set()
    for col in header:
        name = COLUMN_ALIASES.get(col.strip().lower())
        if name in seen:
            errors.append(RowError(None, col, f"The column '{col}' appears twice in the header."))
        seen.add(name or "")
        fields.append(name)
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if not ({"lon", "lat"} <= seen or "wkt" in seen):
        missing.append("lon and lat (or wkt)")
    if missing:
        errors.append(
            RowError(
                None, "header", f"The header lacks the column(s): {', '.join(missing)}.", ",".join(header)
            )
        )
    if errors:
        return _Parsed([], file_errors=errors)
    keyed = [(i, f) for i, f in enumerate(fields) if f]
    width = len(header)
    records = []
    n = 0
    try:
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line
            n += 1
            rec = SourceRecord(n, {f: cells[i] for i, f in keyed if i < len(cells)}, line=reader.line_num)
            if len(cells) > width:
                rec.values["__extra__"] = len(cells) - width
            records.append(rec)
    except csv.Error as exc:  # an unterminated quote swallowing the file, a field over 128 KiB, ...
        problem = f"The CSV cannot be read past line {reader.line_num}: {exc}."
        return _Parsed([], file_errors=[RowError(n + 1, "file", problem, line=reader.line_num)])
    return _Parsed(records)


def _read_geojson(data: bytes) -> _Parsed:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return _Parsed([], file_errors=[RowError(None, "file", f"The file is not valid JSON: {exc}.")])
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        kind = doc.get("type") if isinstance(doc, dict) else type(doc).__name__
        problem = f"The file must be a GeoJSON FeatureCollection, not {kind!r}."
        return _Parsed([], file_errors=[RowError(None, "file", problem)])
    crs, crs_error = _geojson_crs(doc.get("crs"))
    if crs_error:
        return _Parsed([], file_errors=[crs_error])
    features = doc.get("features")
    if not isinstance(features, list):
        return _Parsed(
            [], file_errors=[RowError(None, "features", "The FeatureCollection has no feature list.")]
        )
    records = []
    for n, feat in enumerate(features, start=1):
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            records.append(SourceRecord(n, {"__not_feature__": True}, geojson=True))
            continue
        props = feat.get("properties") or {}
        values = _flatten_properties(props) if isinstance(props, dict) else {"__bad_props__": True}
        if "code" not in values and isinstance(feat.get("id"), str):
            values["code"] = feat["id"]
        records.append(SourceRecord(n, values, geometry=feat.get("geometry"), geojson=True))
    return _Parsed(records, crs=crs)


def _flatten_properties(props: dict[str, Any]) -> dict[str, Any]:
    """Properties by field name; also reads the shape GET /risk-sources returns (nested assessment)."""
    values = {COLUMN_ALIASES[k.lower()]: v for k, v in props.items() if k.lower() in COLUMN_ALIASES}
    assessment = props.get("assessment")
    if isinstance(assessment, dict):
        # An exported feature: `level` is the resulting level, not an input, unless assessed directly.
        for k in ("method", "L", "E", "C", "S"):
            values[k] = assessment.get(k)
        if assessment.get("method") != "direct":
            override = props.get("override")
            values["level"] = override.get("level") if isinstance(override, dict) else None
            values["reason"] = override.get("reason") if isinstance(override, dict) else None
    return values


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
    return (None if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True) else crs), None


def read_file(data: bytes, fmt: str) -> _Parsed:
    """Parse DATA as FMT into raw records (no checks beyond the file's structure)."""
    return _read_csv(data) if fmt == "csv" else _read_geojson(data)


# ---------------------------------------------------------------------------------------------
# Validation


@dataclass
class _Batch:
    """Validated rows, column by column, ready for COPY."""

    rows: list[int] = field(default_factory=list)
    cols: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in SOURCE_COLUMNS})
    geoms: list[Any] = field(default_factory=list)  # shapely geometry, or None for a lon/lat point
    lons: list[float] = field(default_factory=list)
    lats: list[float] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = v.strip()
        return v or None
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _number(v: Any) -> float | None:
    """A float, None when blank; ValueError when not a number."""
    if isinstance(v, bool):
        raise ValueError("a boolean is not a number")
    if v is None:
        return None
    if isinstance(v, int | float):
        return float(v)
    s = str(v).strip()
    return float(s) if s else None


class _RowChecker:
    """Checks one record at a time, appending its clean values to a batch or its errors to a list."""

    def __init__(self, categories: Iterable[str], errors: list[RowError], wgs84: bool = True) -> None:
        self.wgs84 = wgs84  # coordinates can be range-checked as read (otherwise after conversion)
        self.categories = frozenset(categories)
        self.known = ", ".join(sorted(self.categories))
        self.errors = errors
        self.codes: dict[str, int] = {}
        self.plates: dict[str, int] = {}

    def check(self, rec: SourceRecord, batch: _Batch) -> None:
        v = rec.values
        n_before = len(self.errors)

        def err(field_: str, problem: str, value: Any = None) -> None:
            self.errors.append(RowError(rec.row, field_, problem, value, rec.line))

        if v.get("__not_feature__"):
            err("feature", "The item is not a GeoJSON Feature.")
            return
        if v.get("__bad_props__"):
            err("properties", "The feature's properties must be an object.")
            return
        if v.get("__extra__"):
            err("row", f"The row has {v['__extra__']} more value(s) than the header has columns.")
        out: dict[str, Any] = {}
        for name in ("code", "name", "category", "address", "plate_code", "enterprise", "department"):
            value = _text(v.get(name))
            if value is not None and len(value) > MAX_LEN.get(name, 10**9):
                err(name, f"The {name} is longer than {MAX_LEN[name]} characters.", value)
            if value is not None and "\x00" in value:  # PostgreSQL text cannot hold NUL
                err(name, f"The {name} contains a NUL character.", value.replace("\x00", "\\0"))
            out[name] = value
        code, name, category = out["code"], out["name"], out["category"]
        if code is None:
            err("code", "The registry code is missing.")
        elif not CODE_RE.match(code):
            err(
                "code",
                "The code may hold only letters, digits and _ . : - (starting with a letter or digit).",
                code,
            )
        elif code in self.codes:
            err("code", f"The code appears twice in the file (first in row {self.codes[code]}).", code)
        else:
            self.codes[code] = rec.row
        if name is None:
            err("name", "The name is missing.")
        if category is None:
            err("category", "The category is missing.")
        elif category not in self.categories:
            err("category", f"Unknown category '{category}'; known categories: {self.known}.", category)
        plate = out["plate_code"]
        if plate is not None:
            if plate in self.plates:
                err(
                    "plate_code",
                    f"The plate code appears twice in the file (first in row {self.plates[plate]}).",
                    plate,
                )
            else:
                self.plates[plate] = rec.row
        status = _text(v.get("status")) or "active"
        if status not in STATUSES:
            err("status", f"The status must be one of {', '.join(STATUSES)}.", status)
        out["status"] = status
        self._assessment(v, out, err)
        lon, lat, geom = self._location(rec, err)
        if len(self.errors) > n_before:
            return
        batch.rows.append(rec.row)
        batch.lines.append(rec.line)
        for c in SOURCE_COLUMNS:
            batch.cols[c].append(out.get(c))
        batch.geoms.append(geom)
        batch.lons.append(lon)
        batch.lats.append(lat)

    def _assessment(self, v: dict[str, Any], out: dict[str, Any], err) -> None:
        nums: dict[str, float | None] = {}
        for k in ("L", "E", "C", "S"):
            try:
                nums[k] = _number(v.get(k))
            except ValueError:
                err(k, f"{k} is not a number.", v.get(k))
                nums[k] = math.nan
        level = _text(v.get("level"))
        reason = _text(v.get("reason"))
        if reason is not None and len(reason) > MAX_LEN["reason"]:
            err("reason", f"The reason is longer than {MAX_LEN['reason']} characters.", reason)
        if reason is not None and "\x00" in reason:
            err("reason", "The reason contains a NUL character.", reason.replace("\x00", "\\0"))
        method = _text(v.get("method"))
        if method is None:
            # No method column: infer it from the values given.
            if nums["E"] is not None or nums["C"] is not None:
                method = "LEC"
            elif nums["S"] is not None:
                method = "LS"
            elif level is not None and nums["L"] is None:
                method = "direct"
            else:
                err(
                    "method",
                    "The assessment is missing: give the method with L, E, C (LEC), L and S (LS),"
                    " or a level and a reason (direct).",
                )
                return
        else:
            method = {"lec": "LEC", "ls": "LS", "direct": "direct"}.get(method.lower(), method)
        out["method"] = method
        if level is not None and level not in LEVELS:
            err("level", f"The level must be one of {', '.join(LEVELS)}.", level)
        if method == "LEC":
            for k in ("L", "E", "C"):
                x = nums[k]
                if x is None:
                    err(
                        k,
                        f"{k} is required for an LEC assessment (one of {LEC_ALLOWED[k]}).",
                    )
                elif x == x and x not in LEC_SETS[k]:
                    err(k, f"{k} must be one of {LEC_ALLOWED[k]} for LEC.", v.get(k))
            out.update(l=nums["L"], e=nums["E"], c=nums["C"], s=None)
        elif method == "LS":
            for k in ("L", "S"):
                x = nums[k]
                if x is None:
                    err(k, f"{k} is required for an LS (risk matrix) assessment: an integer 1 to 5.")
                elif x == x and not (x.is_integer() and 1 <= x <= 5):
                    err(k, f"{k} must be an integer from 1 to 5 for LS.", v.get(k))
            out.update(l=nums["L"], e=None, c=None, s=nums["S"])
        elif method == "direct":
            if level is None:
                err("level", "A direct assessment needs a level (red, orange, yellow or blue).")
            if reason is None:
                err("reason", "A direct assessment needs a reason.")
            out.update(l=None, e=None, c=None, s=None)
        else:
            err("method", "The method must be LEC, LS or direct.", method)
            return
        if method != "direct":
            # With LEC or LS, a level is an override of the computed one and must say why.
            if level is not None and reason is None:
                err(
                    "reason",
                    f"A level given with an {method} assessment overrides it and needs a reason.",
                    level,
                )
            if reason is not None and level is None:
                err("level", "A reason was given without the override level it explains.", reason)
        out["override_level"] = level
        out["override_reason"] = reason

    def _location(self, rec: SourceRecord, err) -> tuple[float, float, Any]:
        """(lon, lat, None) for a point from columns, (nan, nan, geometry) otherwise; errors reported."""
        nan = math.nan
        if rec.geometry is not None:
            g = rec.geometry
            if isinstance(g, shapely.Geometry):
                return nan, nan, g
            if not isinstance(g, dict) or g.get("type") not in GEOM_TYPES:
                kind = g.get("type") if isinstance(g, dict) else type(g).__name__
                err("geometry", f"The geometry must be a Point, Polygon or MultiPolygon, not {kind!r}.")
                return nan, nan, None
            coords = g.get("coordinates")
            if g["type"] == "Point":
                try:
                    lon, lat = float(coords[0]), float(coords[1])
                except (TypeError, ValueError, IndexError, KeyError):
                    err("geometry", "The point's coordinates must be [lon, lat] numbers.", str(coords)[:80])
                    return nan, nan, None
                if self.wgs84 and not _in_range(lon, lat):
                    err(
                        "geometry", "The point must be [lon, lat] within -180..180, -90..90 (WGS 84).", coords
                    )
                    return nan, nan, None
                return lon, lat, None
            try:
                geom = shape(g)
            except Exception:  # shapely raises several kinds for malformed coordinates
                err("geometry", f"The {g['type']} has malformed coordinates.", str(coords)[:80])
                return nan, nan, None
            return nan, nan, geom
        if rec.geojson:
            err("geometry", "The feature has no geometry.")
            return nan, nan, None
        v = rec.values
        wkt = _text(v.get("wkt"))
        raw_lon, raw_lat = v.get("lon"), v.get("lat")
        if wkt is not None and _text(raw_lon) is None and _text(raw_lat) is None:
            geom = shapely.from_wkt(wkt, on_invalid="ignore")
            if geom is None:
                err("wkt", "The WKT cannot be read.", wkt[:80])
                return nan, nan, None
            if geom.geom_type not in GEOM_TYPES:
                err(
                    "wkt",
                    f"The geometry must be a Point, Polygon or MultiPolygon, not {geom.geom_type}.",
                    wkt[:80],
                )
                return nan, nan, None
            return nan, nan, geom
        if _text(raw_lon) is None or _text(raw_lat) is None:
            err(
                "lon" if _text(raw_lon) is None else "lat",
                "The location is missing: give lon and lat (or wkt).",
            )
            return nan, nan, None
        ok = True
        try:
            lon = _number(raw_lon)
        except ValueError:
            err("lon", "lon is not a number.", raw_lon)
            ok, lon = False, nan
        try:
            lat = _number(raw_lat)
        except ValueError:
            err("lat", "lat is not a number.", raw_lat)
            ok, lat = False, nan
        if ok and not (math.isfinite(lon) and -180 <= lon <= 180):
            err("lon", "lon must be a longitude from -180 to 180 (WGS 84).", raw_lon)
            ok = False
        if ok and not (math.isfinite(lat) and -90 <= lat <= 90):
            err("lat", "lat must be a latitude from -90 to 90 (WGS 84).", raw_lat)
            ok = False
        return (lon, lat, None) if ok else (nan, nan, None)


def _in_range(lon: float, lat: float) -> bool:
    return math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90


def _finish_geometries(
    batch: _Batch, crs: CRS | None, errors: list[RowError]
) -> tuple[np.ndarray, np.ndarray]:
    """Build the geometry array (vectorised), transform to WGS 84, check ranges/validity; drop bad rows."""
    n = len(batch)
    geoms = np.empty(n, dtype=object)
    lons = np.asarray(batch.lons, dtype=float)
    lats = np.asarray(batch.lats, dtype=float)
    is_point = np.array([g is None for g in batch.geoms], dtype=bool)
    if is_point.any():
        with np.errstate(invalid="ignore"):
            geoms[is_point] = shapely.points(lons[is_point], lats[is_point])
    other = ~is_point
    if other.any():
        geoms[other] = shapely.force_2d(np.array([g for g in batch.geoms if g is not None], dtype=object))
    if crs is not None and n:
        tf = Transformer.from_crs(crs, 4326, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1])))
    bounds = shapely.bounds(geoms)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(bounds).all(axis=1)
        in_range = (
            finite
            & (bounds[:, 0] >= -180)
            & (bounds[:, 2] <= 180)
            & (bounds[:, 1] >= -90)
            & (bounds[:, 3] <= 90)
        )
    empty = shapely.is_empty(geoms)
    valid = np.ones(n, dtype=bool)
    if other.any():
        valid[other] = shapely.is_valid(geoms[other])
    bad = np.flatnonzero(~in_range | empty | ~valid)
    for i in bad:
        g = geoms[i]
        row, line = batch.rows[i], batch.lines[i]
        # CSV points were range-checked as read; what is left is WKT (CSV) or a geometry.
        fld = "wkt" if line is not None else "geometry"
        text = shapely.to_wkt(g, rounding_precision=7)[:120] if g is not None else None
        if empty[i]:
            problem = "The geometry is empty."
        elif not in_range[i]:
            problem = "The coordinates are outside lon -180..180 / lat -90..90 (after conversion to WGS 84)."
        else:
            problem = f"The geometry is invalid: {shapely.is_valid_reason(g)}."
        errors.append(RowError(row, fld, problem, text, line))
    return np.delete(np.arange(n), bad), geoms


def validate_records(
    records: list[SourceRecord], categories: Iterable[str], crs: CRS | None = None
) -> tuple[_Batch, np.ndarray, list[RowError]]:
    """Check every record; return the clean batch, its geometries (WGS 84) and every row error."""
    errors: list[RowError] = []
    checker = _RowChecker(categories, errors, wgs84=crs is None)
    batch = _Batch()
    for rec in records:
        checker.check(rec, batch)
    keep, geoms = _finish_geometries(batch, crs, errors)
    if len(keep) < len(batch):
        batch = _subset(batch, keep)
        geoms = geoms[keep]
    errors.sort(key=lambda e: e.row or 0)
    return batch, geoms, errors


def _subset(batch: _Batch, keep: np.ndarray) -> _Batch:
    idx = keep.tolist()
    out = _Batch()
    out.rows = [batch.rows[i] for i in idx]
    out.lines = [batch.lines[i] for i in idx]
    out.cols = {c: [vals[i] for i in idx] for c, vals in batch.cols.items()}
    out.geoms = [batch.geoms[i] for i in idx]
    out.lons = [batch.lons[i] for i in idx]
    out.lats = [batch.lats[i] for i in idx]
    return out


# ---------------------------------------------------------------------------------------------
# Writing


class _Rejected(Exception):
    """Raised inside the transaction to roll it back when the database-side checks find errors."""


def _stage(conn: psycopg.Connection, batch: _Batch, geoms: np.ndarray, tick: Callable[[int], None]) -> None:
    """COPY the clean rows into a temporary staging table (dropped at commit)."""
    conn.execute("DROP TABLE IF EXISTS risk_source_stage")
    conn.execute(STAGE_DDL)
    ewkb = shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)
    cols = [batch.cols[c] for c in SOURCE_COLUMNS]
    n = len(batch)
    step = max(1, n // 50)
    copy_sql = f"COPY risk_source_stage (row_no, {', '.join(SOURCE_COLUMNS)}, geom) FROM STDIN"
    with conn.cursor().copy(copy_sql) as copy:
        for i, row_values in enumerate(zip(batch.rows, *cols, ewkb, strict=True)):
            copy.write_row(row_values)
            if i % step == 0:
                tick(i)
    tick(n)
    conn.execute("ANALYZE risk_source_stage")


def _db_checks(conn: psycopg.Connection, batch: _Batch) -> list[RowError]:
    """The checks that need the database, set-based over the staging table."""
    line_of = dict(zip(batch.rows, batch.lines, strict=True))
    errors = []
    for row_no, _code, at in conn.execute(OUTSIDE_CITY_SQL).fetchall():
        errors.append(
            RowError(
                row_no,
                "geometry" if line_of[row_no] is None else "location",
                "The location is outside the city (check lon/lat order and that they are WGS 84).",
                at,
                line_of[row_no],
            )
        )
    for row_no, plate, holder in conn.execute(PLATE_TAKEN_SQL).fetchall():
        errors.append(
            RowError(
                row_no,
                "plate_code",
                f"The plate code is already registered to risk source {holder}.",
                plate,
                line_of[row_no],
            )
        )
    return errors


def write_batch(
    conn: psycopg.Connection,
    batch: _Batch,
    geoms: np.ndarray,
    *,
    actor: str,
    progress: Progress | None = None,
    stages: dict[str, float] | None = None,
    check_only: bool = False,
) -> tuple[int, int, list[RowError]]:
    """Stage, check and upsert a validated batch in the caller's transaction: (inserted, updated, errors).

    On errors, or with CHECK_ONLY, nothing is upserted; the caller rolls back (the staging table
    goes with it).
    """
    report = progress or (lambda *_: None)
    stages = stages if stages is not None else {}
    n = len(batch)
    t = time.perf_counter()
    conn.execute(IMPORT_LOCK_SQL)
    _stage(conn, batch, geoms, lambda done: report("staging", done, n))
    stages["copy"] = time.perf_counter() - t
    t = time.perf_counter()
    report("checking", 0, 1)
    errors = _db_checks(conn, batch)
    report("checking", 1, 1)
    stages["db_checks"] = time.perf_counter() - t
    if errors or check_only:
        return 0, 0, errors
    t = time.perf_counter()
    report("writing", 0, n)
    # The triggers plan their joins with the statistics from before this statement. When those
    # say risk_sources/source_cells are nearly empty (few live rows on many pages: after a
    # rolled-back import, or an autovacuum ANALYZE that ran while an import was in flight),
    # risk_recolour joins source_cells to risk_sources as a nested loop over a materialised or
    # sequential inner scan: quadratic, 20-100 s for 10,000 rows, hours for 100,000. With both
    # disabled for this one statement the planner must probe the primary keys instead; with good
    # statistics the plans are as fast (the spatial joins already use the GiST indexes).
    saved = conn.execute(
        "SELECT current_setting('enable_material'), current_setting('enable_seqscan')"
    ).fetchone()
    conn.execute(
        "SELECT set_config('enable_material', 'off', true), set_config('enable_seqscan', 'off', true)"
    )
    inserted, updated = conn.execute(UPSERT_SQL, {"actor": actor}).fetchone()
    conn.execute(
        "SELECT set_config('enable_material', %s, true), set_config('enable_seqscan', %s, true)", saved
    )
    report("writing", n, n)
    stages["upsert"] = time.perf_counter() - t
    return inserted, updated, []


def load_categories(conn: psycopg.Connection) -> list[str]:
    """The category codes the registry knows."""
    return [r[0] for r in conn.execute("SELECT code FROM risk_categories ORDER BY code").fetchall()]


def import_records(
    conn: psycopg.Connection,
    records: list[SourceRecord],
    *,
    actor: str,
    crs: CRS | None = None,
    progress: Progress | None = None,
    started: float | None = None,
    stages: dict[str, float] | None = None,
    what: str = "The import was rejected",
) -> ImportResult:
    """Validate RECORDS and upsert them all in one transaction (a savepoint inside the caller's)."""
    started = time.perf_counter() if started is None else started
    report = progress or (lambda *_: None)
    stages = {} if stages is None else stages
    result = ImportResult(ok=True, rows=len(records), stages=stages)
    t = time.perf_counter()
    report("validating", 0, len(records))
    batch, geoms, errors = validate_records(records, load_categories(conn), crs)
    report("validating", len(records), len(records))
    stages["validate"] = time.perf_counter() - t
    if not records:
        errors.append(RowError(None, "file", "The file holds no risk sources."))
    if not len(batch):
        return _rejected(result, errors, started, what)
    try:
        with conn.transaction():
            # Rows with errors stay out of the batch; the rest still get the database checks, so
            # the report is complete in one pass. Any error at all and nothing is upserted.
            inserted, updated, db_errors = write_batch(
                conn, batch, geoms, actor=actor, progress=progress, stages=stages, check_only=bool(errors)
            )
            if errors or db_errors:
                errors = sorted(errors + db_errors, key=lambda e: e.row or 0)
                raise _Rejected
    except _Rejected:
        return _rejected(result, errors, started, what)
    result.inserted, result.updated = inserted, updated
    result.unchanged = len(batch) - inserted - updated
    result.seconds = time.perf_counter() - started
    result.message = (
        f"{len(batch)} risk source(s): {inserted} inserted, {updated} updated, {result.unchanged} unchanged."
    )
    return result


def import_risk_sources(
    conn: psycopg.Connection,
    path_or_bytes: str | Path | bytes,
    *,
    fmt: str | None = None,
    actor: str,
    progress: Progress | None = None,
) -> ImportResult:
    """Upsert risk sources by code from a CSV or GeoJSON file: all rows or none, with a row report.

    The write is one transaction: a savepoint in the caller's transaction, which the caller
    commits (a connection used as a context manager does); on an autocommit connection it
    commits by itself. On rejection the savepoint is rolled back: nothing is written. Rows are
    numbered from 1 (the first data row or feature); CSV errors also carry the file `line`.
    Raises ImportFormatError when the format is neither CSV nor GeoJSON.
    """
    started = time.perf_counter()
    report = progress or (lambda *_: None)
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        data = bytes(path_or_bytes)
        fmt = detect_format(None, fmt) if fmt else ("geojson" if data.lstrip()[:1] == b"{" else "csv")
    else:
        path = Path(path_or_bytes)
        fmt = detect_format(path.name, fmt)
        data = path.read_bytes()
    stages: dict[str, float] = {}
    report("reading", 0, 1)
    parsed = read_file(data, fmt)
    report("reading", 1, 1)
    stages["read"] = time.perf_counter() - started
    if parsed.file_errors:
        result = ImportResult(ok=False, stages=stages)
        return _rejected(result, parsed.file_errors, started, "The file cannot be imported")
    return import_records(
        conn, parsed.records, actor=actor, crs=parsed.crs, progress=progress, started=started, stages=stages
    )
