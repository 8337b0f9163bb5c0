"""Validating import rows with a kind's Create model: the same rules as the API, every error reported.

Each record's values go through the kind's `Bulk.from_row` and are validated by the SAME pydantic
Create model as `POST <path>`: one `TypeAdapter(list[Create])` call when every row is good (the usual
case, and the fast one), row by row to report every error otherwise. Then the kind's cross-field
checks and uniqueness inside the file. Errors name the file's column (`lon`, `L`, `class`) and carry
the row, the CSV line and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import orjson
import shapely
from pydantic import TypeAdapter, ValidationError
from pyproj import CRS, Transformer

from gridrisk.geometry.gcj02 import TO_WGS84
from gridrisk.imports.bulk_import import RowError
from gridrisk.models.geojson import GeometryIn
from gridrisk.registry.files import Record, column_names
from gridrisk.registry.kind import FeatureKind, RowProblem

# Stands in for a location that could not be read while the row's other fields are checked.
_NOWHERE = GeometryIn.model_construct(type="Point", coordinates=[0.0, 0.0])


@dataclass
class Batch:
    """Validated rows ready for COPY: each row's column values in the kind's order, and its geometry."""

    rows: list[int] = field(default_factory=list)
    lines: list[int | None] = field(default_factory=list)
    located_by: list[str] = field(default_factory=list)  # the field a location error names
    values: list[list[Any]] = field(default_factory=list)
    lons: list[float] = field(default_factory=list)  # NaN for a geometry that is not a point
    lats: list[float] = field(default_factory=list)
    shapes: list[str | None] = field(default_factory=list)  # GeoJSON text of the other geometries

    def __len__(self) -> int:
        return len(self.rows)


@cache
def _adapter(model: type) -> TypeAdapter:
    return TypeAdapter(list[model])


def _sentence(message: str) -> str:
    message = message.removeprefix("Value error, ")
    message = message[:1].upper() + message[1:]
    return message if message.endswith((".", "?", "!")) else message + "."


class _Rows:
    """Turns records into Create model inputs, collecting every row's errors."""

    def __init__(self, kind: FeatureKind, crs: CRS | None, coordinates: str | None = None) -> None:
        self.kind = kind
        self.fields = kind.fields
        self.known = set(column_names(sum(kind.file_columns, ()), kind.bulk.aliases).values())
        self.transform = None
        if crs is not None:
            tf = Transformer.from_crs(crs, 4326, always_xy=True)
            self.transform = lambda xy: np.column_stack(tf.transform(xy[:, 0], xy[:, 1]))
        # Lon/lat picked on Amap or Tencent maps (GCJ-02) or Baidu maps (BD-09): shifted back to WGS 84.
        self.offset = TO_WGS84.get(coordinates or "")
        if self.offset is not None:
            offset, base = self.offset, self.transform

            def shifted(xy):
                xy = base(xy) if base is not None else xy
                return np.column_stack(offset(xy[:, 0], xy[:, 1]))

            self.transform = shifted
        self.errors: list[RowError] = []

    def error(self, rec: Record, field_: str, problem: str, value: Any = None) -> None:
        self.errors.append(RowError(rec.row, field_, problem, value, rec.line))

    def values(self, rec: Record, report: bool = True) -> dict[str, Any]:
        """The row's values, text stripped, blanks left out (a field left blank is a field not given)."""
        if rec.problem and report:
            self.error(rec, *rec.problem)
        out = {}
        for k, x in rec.values.items():
            if x.__class__ is str:
                x = x.strip()
                if not x:
                    continue
                if "\x00" in x:  # PostgreSQL text cannot hold NUL
                    if report:
                        self.error(rec, k, f"The {k} contains a NUL character.", x.replace("\x00", "\\0"))
                    continue
            elif x is None:
                continue
            out[k] = x
        return out

    def model_input(self, rec: Record, values: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """The Create model's input and the field naming the location (errors so far reported)."""
        geometry, located_by = self.location(rec, values)
        data = self.kind.bulk.from_row(values) if self.kind.bulk.from_row is not None else values
        if not data.keys() <= self.fields:  # a GeoJSON export carries more than the model takes
            data = {k: x for k, x in data.items() if k in self.fields}
        data["geometry"] = geometry
        return data, located_by

    def location(self, rec: Record, values: dict[str, Any]) -> tuple[Any, str]:
        """The row's geometry in WGS 84 (_NOWHERE after reporting why not) and the field that names it."""
        wkt, lon, lat = values.pop("wkt", None), values.pop("lon", None), values.pop("lat", None)
        g = rec.geometry
        if g is None and rec.geojson:
            self.error(rec, "geometry", "The feature has no geometry.")
            return _NOWHERE, "geometry"
        if g is None and wkt is not None and lon is None and lat is None:
            g = shapely.from_wkt(str(wkt), on_invalid="ignore")
            if g is None:
                self.error(rec, "wkt", "The WKT cannot be read.", str(wkt)[:80])
                return _NOWHERE, "wkt"
            if self.transform is not None:
                g = shapely.transform(g, self.transform)
            return orjson.loads(shapely.to_geojson(g)), "wkt"
        if g is not None:
            if self.transform is not None or isinstance(g, shapely.Geometry):
                try:
                    shape = g if isinstance(g, shapely.Geometry) else shapely.from_geojson(orjson.dumps(g))
                    if self.transform is not None:
                        shape = shapely.transform(shape, self.transform)
                    g = orjson.loads(shapely.to_geojson(shape))
                except Exception as exc:  # malformed coordinates: shapely and GEOS raise several kinds
                    self.error(rec, "geometry", f"The geometry cannot be read: {exc}.")
                    return _NOWHERE, "geometry"
            return g, "geometry"
        if lon is None or lat is None:
            self.error(
                rec, "lon" if lon is None else "lat", "The location is missing: give lon and lat (or wkt)."
            )
            return _NOWHERE, "location"
        coords = []
        for name, raw, limit in (("lon", lon, 180), ("lat", lat, 90)):
            try:
                x = float(raw) if raw.__class__ is not bool else math.nan
            except (TypeError, ValueError):
                self.error(rec, name, f"{name} is not a number.", raw)
                continue
            if not -limit <= x <= limit:  # NaN fails too
                what = "longitude" if name == "lon" else "latitude"
                self.error(rec, name, f"{name} must be a {what} from -{limit} to {limit} (WGS 84).", raw)
                continue
            coords.append(x)
        if len(coords) < 2:
            return _NOWHERE, "location"
        if self.offset is not None:
            x, y = self.offset(coords[0], coords[1])
            coords = [float(x), float(y)]
        return {"type": "Point", "coordinates": coords}, "location"

    def field_of(self, loc: tuple, located_by: str) -> str:
        """The file column a validation error's location names."""
        for part in reversed(loc):
            if isinstance(part, str) and part in self.known:
                return part
        head = str(loc[0]) if loc else "row"
        if head == "geometry":
            return located_by
        return self.kind.bulk.rename.get(head, head)

    def validate_one(self, rec: Record, data: dict[str, Any], located_by: str) -> Any:
        """The model of one input, or None after reporting each of its errors."""
        try:
            return self.kind.models.create.model_validate(data)
        except ValidationError as exc:
            values = self.values(rec, report=False)  # as read: the values the errors name
            for e in exc.errors():
                name = self.field_of(tuple(e.get("loc", ())), located_by)
                self.error(rec, name, _sentence(e.get("msg", "invalid")), values.get(name))
            return None


def validate_records(
    kind: FeatureKind, records: list[Record], crs: CRS | None = None, coordinates: str | None = None
) -> tuple[Batch, list[RowError]]:
    """Check every record with the kind's Create model; the clean batch and every row error.

    COORDINATES: "GCJ-02" or "BD-09" when the file's lon/lat are in a Chinese web map's offset system.
    """
    rows = _Rows(kind, crs, coordinates)
    inputs: list[tuple[Record, dict, str]] = []
    bad: set[int] = set()  # rows with an error already: checked for the rest, never written
    for rec in records:
        n_before = len(rows.errors)
        values = rows.values(rec)
        if rec.problem and not values:
            continue  # not a feature at all: nothing else to say
        try:
            data, located_by = rows.model_input(rec, values)
        except RowProblem as p:
            rows.error(rec, p.field, p.problem, rows.values(rec, report=False).get(p.field))
            continue
        if len(rows.errors) > n_before:
            bad.add(len(inputs))
        inputs.append((rec, data, located_by))
    models: list[Any] = []
    if not bad:
        try:
            models = _adapter(kind.models.create).validate_python([x[1] for x in inputs])
        except ValidationError:
            models = []  # some row is bad: validate them one by one to report every error
    if len(models) < len(inputs):
        models = [rows.validate_one(*x) for x in inputs]
        models = [None if i in bad else m for i, m in enumerate(models)]
    batch = _batch(kind, rows, inputs, models)
    rows.errors.sort(key=lambda e: e.row or 0)
    return batch, rows.errors


def _batch(kind: FeatureKind, rows: _Rows, inputs: list, models: list) -> Batch:
    """The good rows, after the kind's cross-field checks and uniqueness inside the file."""
    batch = Batch()
    first: dict[str, dict[Any, int]] = {c: {} for c in kind.unique}
    check = kind.extension.check
    columns = kind.columns
    json_columns = [i for i, c in enumerate(columns) if c in kind.json_columns]
    for (rec, _, located_by), model in zip(inputs, models, strict=True):
        if model is None:
            continue
        n_before = len(rows.errors)
        if check is not None:
            for p in check(model):
                rows.error(rec, p["field"], _sentence(p["message"]))
        cols = kind.columns_of(model)
        for column, seen in first.items():
            value = cols.get(column)
            if value is None:
                continue
            if value in seen:
                problem = f"The {column} appears twice in the file (first in row {seen[value]})."
                rows.error(rec, column, problem, value)
            else:
                seen[value] = rec.row
        if len(rows.errors) > n_before:
            continue
        values = [cols.get(c) for c in columns]
        for i in json_columns:
            values[i] = orjson.dumps(values[i]).decode()
        batch.values.append(values)
        batch.rows.append(rec.row)
        batch.lines.append(rec.line)
        batch.located_by.append("location" if located_by == "wkt" else located_by)
        g = model.geometry
        if g.type == "Point":
            batch.lons.append(g.coordinates[0])
            batch.lats.append(g.coordinates[1])
            batch.shapes.append(None)
        else:
            batch.lons.append(math.nan)
            batch.lats.append(math.nan)
            batch.shapes.append(g.to_json())
    return batch


def ewkb(batch: Batch) -> list[str]:
    """The batch's geometries as hex EWKB (SRID 4326), points built vectorised."""
    n = len(batch)
    geoms = np.empty(n, dtype=object)
    is_point = np.array([s is None for s in batch.shapes], dtype=bool)
    if is_point.any():
        lons, lats = np.asarray(batch.lons), np.asarray(batch.lats)
        geoms[is_point] = shapely.points(lons[is_point], lats[is_point])
    if (~is_point).any():
        others = np.array([s for s in batch.shapes if s is not None], dtype=object)
        geoms[~is_point] = shapely.force_2d(shapely.from_geojson(others))
    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True).tolist()
