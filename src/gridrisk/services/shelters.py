"""Shelter coverage analysis and bulk import (CSV or GeoJSON), shared by the API and the CLI.

Coverage (SPEC.md "Shelters"): a shelter that is not closed reaches a cell when the cell's centroid
lies within its class's service radius; each shelter's capacity is shared among the cells it reaches
in proportion to their population. The whole report is one SQL statement (db/sql/shelter_coverage*.sql).

Import: every row is checked in Python (the same model as POST /shelters), then the clean rows are
COPYed into a temporary staging table where the checks that need the database run set-based (known
class? inside the city? room for the people already checked in?). Only when no row has an error are
the shelters upserted by code, in the caller's transaction: all rows or none.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import psycopg
import shapely
from pydantic import ValidationError
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.errors import GEOSException
from shapely.geometry import mapping, shape

from gridrisk.db.sql_files import sql
from gridrisk.imports.bulk_import import (
    ImportResult,
    RowError,
    detect_format,
)
from gridrisk.imports.bulk_import import rejected as _rejected
from gridrisk.models.shelters import ShelterCreate, figure_errors

Progress = Callable[[str, int, int], None]

MARKER = "/*coverage*/"


# ---------------------------------------------------------------------------------------------
# Coverage


@cache
def coverage_sql(kind: str = "report") -> str:
    """The coverage statement: `report` (JSON: totals, districts, cells) or `geojson` (cells)."""
    return sql(f"shelter_coverage_{kind}").replace(MARKER, sql("shelter_coverage"))


# The statement's estimated cost (geography functions over 12,000 cells) passes the JIT threshold,
# and compiling it costs 1–2 s, several times what the query itself takes: JIT is off for it alone.
NO_JIT = "SELECT set_config('jit', 'off', true)"


def layer_exists(conn: psycopg.Connection, layer: str) -> bool:
    return conn.execute("SELECT 1 FROM layers WHERE name = %s", (layer,)).fetchone() is not None


def coverage(conn: psycopg.Connection, layer: str = "comprehensive", *, with_cells: bool = True) -> dict:
    """The coverage report of LAYER as a dict: rule, city totals, district totals, cells (worst first).

    Raises LookupError for an unknown layer.
    """
    if not layer_exists(conn, layer):
        names = [r[0] for r in conn.execute("SELECT name FROM layers ORDER BY name").fetchall()]
        raise LookupError(f"no layer '{layer}'; the layers are: {', '.join(names) or 'none'}")
    with conn.transaction():
        conn.execute(NO_JIT)
        row = conn.execute(coverage_sql("report"), {"layer": layer, "with_cells": with_cells}).fetchone()
    return orjson.loads(row[0])


def print_coverage(report: dict, console, top: int = 20) -> None:
    """The city and district totals, then the TOP cells with the largest shortfall (for the CLI)."""
    from rich.table import Table

    def pct(x: float | None) -> str:
        return "—" if x is None else f"{100 * x:.1f}%"

    city = report["city"]
    console.print(
        f"[bold]{report['layer']}[/bold]: population {city['population']:,}, capacity reaching them "
        f"{city['capacity']:,.0f} ({pct(city['ratio'])}), shortfall {city['shortfall']:,.0f} persons in "
        f"{city['cells_with_shortfall']:,} of {city['cells']:,} cells; {city['cells_unreached']:,} cells "
        f"({city['population_unreached']:,} people) reached by no shelter"
    )
    by_class = ", ".join(f"{k} {pct(v['ratio'])}" for k, v in (city.get("by_class") or {}).items())
    console.print(f"capacity ÷ population by class: {by_class}")
    if city["idle_shelters"]:
        console.print(
            f"[yellow]{city['idle_shelters']} shelter(s) reach no populated cell[/yellow] "
            f"({city['idle_capacity']:,} places): {', '.join(city['idle_shelter_codes'][:20])}"
        )
    table = Table(title="Districts")
    for col in ("district", "population", "capacity", "ratio", "shortfall", "cells short", "fixed ratio"):
        table.add_column(col, justify="left" if col == "district" else "right")
    for d in report["districts"]:
        fixed = (d.get("by_class") or {}).get("fixed", {}).get("ratio")
        table.add_row(
            f"{d['code']} {d['name'] or ''}",
            f"{d['population']:,}",
            f"{d['capacity']:,.0f}",
            pct(d["ratio"]),
            f"{d['shortfall']:,.0f}",
            f"{d['cells_with_shortfall']:,}/{d['cells']:,}",
            pct(fixed),
        )
    console.print(table)
    cells = report.get("cells") or []
    table = Table(title=f"The {min(top, len(cells))} cells with the largest shortfall")
    for col in ("cell", "district", "population", "capacity", "ratio", "shortfall", "shelters"):
        table.add_column(col, justify="left" if col in ("cell", "district") else "right")
    for c in cells[:top]:
        table.add_row(
            c["code"],
            c["district_code"] or "",
            f"{c['population']:,}",
            f"{c['capacity']:,.1f}",
            pct(c["ratio"]),
            f"{c['shortfall']:,.0f}",
            str(len(c["shelters"])),
        )
    console.print(table)


# ---------------------------------------------------------------------------------------------
# Import: reading

# File column (lower-cased) → field.
COLUMN_ALIASES = {
    "code": "code",
    "name": "name",
    "class": "class",
    "shelter_class": "class",
    "lon": "lon",
    "lng": "lon",
    "longitude": "lon",
    "lat": "lat",
    "latitude": "lat",
    "wkt": "wkt",
    "total_area_m2": "total_area_m2",
    "total_area": "total_area_m2",
    "effective_area_m2": "effective_area_m2",
    "effective_area": "effective_area_m2",
    "capacity": "capacity",
    "status": "status",
    "facilities": "facilities",
    "address": "address",
    "district_code": "district_code",
    "managing_unit": "managing_unit",
}
REQUIRED_COLUMNS = ("code", "name", "class")
# Facilities in one CSV cell: separated by ; | 、 or ，
FACILITY_SEPARATORS = (";", "|", "、", "，")


@dataclass
class _Record:
    row: int
    values: dict[str, Any]
    geometry: Any = None  # the GeoJSON geometry of a feature
    line: int | None = None


def _decode(data: bytes) -> str:
    # Spreadsheets save UTF-8 with a BOM, or GB 18030 on Chinese Windows.
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("gb18030")


def _read_csv(data: bytes) -> tuple[list[_Record], list[RowError]]:
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    header = next(reader, None)
    if not header:
        return [], [RowError(None, "file", "The file is empty; it needs a header row.")]
    fields = [COLUMN_ALIASES.get(col.strip().lower()) for col in header]
    seen = [f for f in fields if f]
    errors = [
        RowError(None, f, f"The column '{f}' appears twice in the header.")
        for f in set(seen)
        if seen.count(f) > 1
    ]
    missing = [c for c in REQUIRED_COLUMNS if c not in seen]
    if not ({"lon", "lat"} <= set(seen) or "wkt" in seen):
        missing.append("lon and lat (or wkt)")
    if missing:
        errors.append(RowError(None, "header", f"The header lacks the column(s): {', '.join(missing)}."))
    if errors:
        return [], errors
    records = []
    for cells in reader:
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        values = {f: cells[i] for i, f in enumerate(fields) if f and i < len(cells)}
        if len(cells) > len(header):
            values["__extra__"] = len(cells) - len(header)
        records.append(_Record(len(records) + 1, values, line=reader.line_num))
    return records, []


def _read_geojson(data: bytes) -> tuple[list[_Record], CRS | None, list[RowError]]:
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return [], None, [RowError(None, "file", f"The file is not valid JSON: {exc}.")]
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        return [], None, [RowError(None, "file", "The file must be a GeoJSON FeatureCollection.")]
    crs = None
    if doc.get("crs") is not None:
        member = doc["crs"]
        name = member.get("properties", {}).get("name") if isinstance(member, dict) else None
        try:
            crs = CRS.from_user_input(name)
        except (CRSError, TypeError):
            return [], None, [RowError(None, "crs", f"Unknown coordinate reference system {name!r}.")]
        if crs.equals(CRS.from_epsg(4326), ignore_axis_order=True) or str(name).upper().endswith("CRS84"):
            crs = None
    features = doc.get("features")
    if not isinstance(features, list):
        return [], None, [RowError(None, "features", "The FeatureCollection has no feature list.")]
    records = []
    for n, feat in enumerate(features, start=1):
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            records.append(_Record(n, {"__not_feature__": True}))
            continue
        props = feat.get("properties") or {}
        if not isinstance(props, dict):
            records.append(_Record(n, {"__bad_props__": True}))
            continue
        values = {COLUMN_ALIASES[k.lower()]: v for k, v in props.items() if k.lower() in COLUMN_ALIASES}
        # The shape GET /shelters returns: district as an object, `full` for an open shelter.
        if "district_code" not in values and isinstance(props.get("district"), dict):
            values["district_code"] = props["district"].get("code")
        if values.get("status") == "full":
            values["status"] = "open"
        records.append(_Record(n, values, geometry=feat.get("geometry")))
    return records, crs, []


# ---------------------------------------------------------------------------------------------
# Import: validation

STAGE_COLUMNS = (
    "code",
    "name",
    "class",
    "total_area_m2",
    "effective_area_m2",
    "capacity",
    "status",
    "facilities",
    "address",
    "district_code",
    "managing_unit",
)


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _facilities(v: Any) -> Any:
    """A list as is; a CSV cell split on ; | 、 or ，."""
    if isinstance(v, str):
        text = v
        for sep in FACILITY_SEPARATORS[1:]:
            text = text.replace(sep, FACILITY_SEPARATORS[0])
        return [p.strip() for p in text.split(FACILITY_SEPARATORS[0]) if p.strip()]
    return v


def _check_record(rec: _Record, crs: CRS | None, errors: list[RowError]) -> dict[str, Any] | None:
    """The row's clean values (geometry as WGS 84 WKB) or None, appending its errors."""
    v = rec.values

    def err(field_: str, problem: str, value: Any = None) -> None:
        errors.append(RowError(rec.row, field_, problem, value, rec.line))

    if v.get("__not_feature__"):
        err("feature", "The item is not a GeoJSON Feature.")
        return None
    if v.get("__bad_props__"):
        err("properties", "The feature's properties must be an object.")
        return None
    n_before = len(errors)
    if v.get("__extra__"):
        err("row", f"The row has {v['__extra__']} more value(s) than the header has columns.")
    body: dict[str, Any] = {
        k: (v[k].strip() if isinstance(v[k], str) else v[k])
        for k in STAGE_COLUMNS
        if k in v and not _blank(v[k])
    }
    if "facilities" in body:
        body["facilities"] = _facilities(body["facilities"])
    geometry = rec.geometry
    if rec.line is not None:  # CSV: lon/lat or wkt
        if not _blank(v.get("wkt")):
            try:
                geometry = mapping(shapely.from_wkt(str(v["wkt"])))
            except GEOSException as exc:
                err("wkt", f"The WKT cannot be read: {exc}.", v["wkt"])
                return None
        else:
            coords = []
            for name in ("lon", "lat"):
                try:
                    coords.append(float(str(v.get(name, "")).strip()))
                except ValueError:
                    err(name, f"{name} must be a number (WGS 84 degrees).", v.get(name))
            if len(errors) > n_before:
                return None
            geometry = {"type": "Point", "coordinates": coords}
    if geometry is None:
        err("geometry", "The feature has no geometry.")
        return None
    if crs is not None and isinstance(geometry, dict):
        try:
            tf = Transformer.from_crs(crs, 4326, always_xy=True)
            geometry = mapping(shapely.transform(shape(geometry), lambda xy: _transform(tf, xy)))
        except Exception as exc:  # malformed coordinates: reported by the model check below
            err("geometry", f"The geometry cannot be converted to WGS 84: {exc}.")
            return None
    body["geometry"] = geometry
    try:
        model = ShelterCreate.model_validate(body)
    except ValidationError as exc:
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ())]
            name = loc[0] if loc else "row"
            if rec.line is not None and name == "geometry":
                name = "location"
            err(name, e.get("msg", "invalid"), body.get(loc[0]) if loc and loc[0] != "geometry" else None)
        return None
    for e in figure_errors(model.total_area_m2, model.effective_area_m2, model.capacity):
        err(e["field"], e["message"][0].upper() + e["message"][1:] + ".")
    if len(errors) > n_before:
        return None
    out = model.model_dump(exclude={"geometry"}, by_alias=True)
    out["facilities"] = orjson.dumps(out["facilities"]).decode()
    # Whether the file says the status, or leaves a registered shelter's status as it is.
    out["status"] = model.status if "status" in body else None
    geom = shapely.set_srid(shape(model.geometry.model_dump()), 4326)
    out["ewkb"] = shapely.to_wkb(geom, hex=True, include_srid=True)
    return out


def _transform(tf: Transformer, xy):
    import numpy as np

    x, y = tf.transform(xy[:, 0], xy[:, 1])
    return np.column_stack([x, y])


# ---------------------------------------------------------------------------------------------
# Import: writing

STAGE_DDL = """
CREATE TEMP TABLE shelter_stage (
    row_no integer NOT NULL,
    line integer,
    code text NOT NULL,
    name text NOT NULL,
    class text NOT NULL,
    total_area_m2 double precision,
    effective_area_m2 double precision,
    capacity integer,
    status text,
    facilities jsonb NOT NULL,
    address text,
    district_code text,
    managing_unit text,
    geom geometry(Geometry, 4326) NOT NULL
) ON COMMIT DROP
"""

# Set-based checks over the staging table: (row, field, problem, value).
DB_CHECKS_SQL = """
SELECT s.row_no, 'class', 'Unknown shelter class; the classes are: '
       || (SELECT string_agg(class, ', ' ORDER BY class) FROM shelter_classes) || '.', s.class
FROM shelter_stage s WHERE NOT EXISTS (SELECT 1 FROM shelter_classes k WHERE k.class = s.class)
UNION ALL
SELECT s.row_no, 'location',
       'The location is outside the city (check lon/lat order and that they are WGS 84).',
       ST_AsText(ST_PointOnSurface(s.geom), 6)
FROM shelter_stage s
WHERE NOT EXISTS (SELECT 1 FROM city_parts p WHERE p.geom && s.geom AND ST_Intersects(p.geom, s.geom))
UNION ALL
SELECT s.row_no, 'district_code', 'Unknown district; see GET /districts for the codes.', s.district_code
FROM shelter_stage s
WHERE s.district_code IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM cells d WHERE d.layer = 'district' AND d.code = s.district_code)
UNION ALL
SELECT s.row_no, 'capacity',
       format('The shelter holds %s people now; the capacity cannot be lower.', r.occupancy),
       s.capacity::text
FROM shelter_stage s JOIN shelters r ON r.code = s.code
WHERE s.capacity < r.occupancy
UNION ALL
SELECT s.row_no, 'status', format('The shelter holds %s people now; check them out before it goes %s.',
                                  r.occupancy, s.status), s.status
FROM shelter_stage s JOIN shelters r ON r.code = s.code
WHERE s.status IN ('standby', 'closed') AND r.occupancy > 0
ORDER BY 1
"""

# Before the checks: the capacity from the area where not given, the district from the geometry.
STAGE_DERIVE_SQL = """
UPDATE shelter_stage s
SET capacity = coalesce(s.capacity, floor(s.effective_area_m2 / k.m2_per_person + 1e-9)::int),
    district_code = coalesce(s.district_code, (
        SELECT c.code FROM cell_pieces p JOIN cells c ON c.id = p.cell_id
        WHERE p.layer = 'district' AND p.geom && ST_PointOnSurface(s.geom)
          AND ST_Intersects(p.geom, ST_PointOnSurface(s.geom))
        ORDER BY c.code LIMIT 1))
FROM shelter_classes k
WHERE k.class = s.class
"""

# Registered shelters: a new version only when something changed (geometries compared at 1e-7°,
# about a centimetre: the precision GET /shelters exports). A status the file leaves out is kept;
# an open shelter is `full` when its occupancy reaches the (new) capacity, and back.
UPDATE_SQL = """
WITH up AS (
    UPDATE shelters r SET
        name = s.name, class = s.class, geom = s.geom, total_area_m2 = s.total_area_m2,
        effective_area_m2 = s.effective_area_m2, capacity = s.capacity,
        status = CASE WHEN coalesce(s.status, r.status) IN ('open', 'full')
                      THEN CASE WHEN r.occupancy >= s.capacity THEN 'full' ELSE 'open' END
                      ELSE coalesce(s.status, r.status) END,
        facilities = s.facilities, address = s.address, district_code = s.district_code,
        managing_unit = s.managing_unit,
        version = r.version + 1, updated_at = now(), updated_by = %(actor)s
    FROM shelter_stage s
    WHERE r.code = s.code
      AND ((r.name, r.class, ST_AsEWKB(ST_SnapToGrid(r.geom, 1e-7)), r.total_area_m2, r.effective_area_m2,
           r.capacity, r.facilities, r.address, r.district_code, r.managing_unit)
          IS DISTINCT FROM
          (s.name, s.class, ST_AsEWKB(ST_SnapToGrid(s.geom, 1e-7)), s.total_area_m2, s.effective_area_m2,
           s.capacity, s.facilities, s.address, s.district_code, s.managing_unit)
           OR (s.status IS NOT NULL
               AND s.status <> CASE WHEN r.status = 'full' THEN 'open' ELSE r.status END))
    RETURNING 1
)
SELECT count(*) FROM up
"""

INSERT_SQL = """
INSERT INTO shelters (code, name, class, geom, total_area_m2, effective_area_m2, capacity, status, facilities,
                      address, district_code, managing_unit, created_by, updated_by)
SELECT s.code, s.name, s.class, s.geom, s.total_area_m2, s.effective_area_m2, s.capacity,
       CASE WHEN coalesce(s.status, 'standby') = 'open' AND s.capacity = 0 THEN 'full'
            ELSE coalesce(s.status, 'standby') END,
       s.facilities, s.address, s.district_code, s.managing_unit, %(actor)s, %(actor)s
FROM shelter_stage s
WHERE NOT EXISTS (SELECT 1 FROM shelters r WHERE r.code = s.code)
ORDER BY s.code
"""

# Imports queue behind each other; check-ins and edits lock one row each and cannot deadlock with one.
IMPORT_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('gridrisk:shelter_import'))"


class _Rejected(Exception):
    """Raised inside the transaction to roll it back when the database-side checks find errors."""


def import_shelters(
    conn: psycopg.Connection,
    path_or_bytes: str | Path | bytes,
    *,
    fmt: str | None = None,
    actor: str,
    progress: Progress | None = None,
) -> ImportResult:
    """Upsert shelters by code from a CSV or GeoJSON file: all rows or none, with a row report.

    CSV columns: code, name, class, lon + lat (or wkt), and optionally total_area_m2,
    effective_area_m2, capacity, status, facilities (separated by ; or 、), address, district_code,
    managing_unit. GeoJSON: a FeatureCollection with the same property names (a `crs` member naming
    another CRS is converted). The write is a savepoint in the caller's transaction; the caller
    commits when the result is ok. Raises ImportFormatError for a format that is neither.
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
    report("reading", 0, 1)
    crs = None
    if fmt == "csv":
        records, file_errors = _read_csv(data)
    else:
        records, crs, file_errors = _read_geojson(data)
    report("reading", 1, 1)
    result = ImportResult(ok=True, rows=len(records))
    if file_errors:
        return _rejected(result, file_errors, started, "The file cannot be imported")
    if not records:
        return _rejected(
            result,
            [RowError(None, "file", "The file holds no shelters.")],
            started,
            "The import was rejected",
        )
    errors: list[RowError] = []
    clean: list[tuple[_Record, dict]] = []
    first_row: dict[str, int] = {}
    for i, rec in enumerate(records):
        out = _check_record(rec, crs, errors)
        if out is not None:
            if out["code"] in first_row:
                errors.append(
                    RowError(
                        rec.row,
                        "code",
                        f"The code repeats row {first_row[out['code']]}.",
                        out["code"],
                        rec.line,
                    )
                )
                continue
            first_row[out["code"]] = rec.row
            clean.append((rec, out))
        if i % 500 == 0:
            report("validating", i, len(records))
    report("validating", len(records), len(records))
    try:
        with conn.transaction():
            conn.execute(IMPORT_LOCK_SQL)
            conn.execute("DROP TABLE IF EXISTS shelter_stage")
            conn.execute(STAGE_DDL)
            cols = ("row_no", "line", *STAGE_COLUMNS, "geom")
            with conn.cursor().copy(f"COPY shelter_stage ({', '.join(cols)}) FROM STDIN") as copy:
                for rec, out in clean:
                    copy.write_row((rec.row, rec.line, *(out[c] for c in STAGE_COLUMNS), out["ewkb"]))
            report("checking", 0, 1)
            conn.execute(STAGE_DERIVE_SQL)
            for row_no, fld, problem, value in conn.execute(DB_CHECKS_SQL).fetchall():
                line = next((r.line for r, _ in clean if r.row == row_no), None)
                errors.append(RowError(row_no, fld, problem, value, line))
            report("checking", 1, 1)
            if errors:
                errors.sort(key=lambda e: e.row or 0)
                raise _Rejected
            report("writing", 0, len(clean))
            updated = conn.execute(UPDATE_SQL, {"actor": actor}).fetchone()[0]
            inserted = conn.execute(INSERT_SQL, {"actor": actor}).rowcount
            report("writing", len(clean), len(clean))
    except _Rejected:
        return _rejected(result, errors, started, "The import was rejected")
    result.inserted, result.updated = inserted, updated
    result.unchanged = len(clean) - inserted - updated
    result.seconds = time.perf_counter() - started
    result.message = (
        f"{len(clean)} shelter(s): {inserted} inserted, {updated} updated, {result.unchanged} unchanged."
    )
    return result
