"""What every bulk import shares: formats, the row-error report and the all-or-nothing verdict."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMATS = ("csv", "xlsx", "geojson", "gpkg")
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".xls": "xlsx",  # the reader takes both Excel formats
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
}
MAX_REPORTED_ERRORS = 1000


class ImportFormatError(ValueError):
    """The file's format is not one this import reads (CSV, GeoJSON or GeoPackage)."""


@dataclass
class RowError:
    """One problem in one row: the 1-based data row, the field, a sentence and the offending value."""

    row: int | None
    field: str
    problem: str
    value: Any = None
    line: int | None = None  # CSV only: the file line (the header is line 1)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "field": self.field, "problem": self.problem}
        if self.value is not None:
            out["value"] = self.value if isinstance(self.value, int | float) else str(self.value)[:200]
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass
class ImportResult:
    """What an import did, or why it wrote nothing: counts, the row report and the time per stage."""

    ok: bool
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_count: int = 0
    seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    message: str = ""
    coordinates: str | None = None  # the offset system the file's lon/lat were in (GCJ-02, BD-09)

    def summary(self) -> dict[str, Any]:
        """The success body of the HTTP route and the CLI."""
        return {
            "rows": self.rows,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "seconds": round(self.seconds, 3),
            # What the coordinates were read as: WGS 84, or converted to it from a web map's system.
            "coordinates": f"{self.coordinates} (converted to WGS 84)"
            if self.coordinates not in (None, "WGS84")
            else "WGS 84",
        }

    def report(self) -> dict[str, Any]:
        """The row report of a rejected import."""
        return {
            "rows": self.rows,
            "error_count": self.error_count,
            "errors_shown": len(self.errors),
            "row_numbers": "1-based data rows (CSV: the row after the header is 1; `line` is the file line)",
            "errors": self.errors,
        }


def detect_format(filename: str | None, fmt: str | None = None) -> str:
    """The import format from an explicit FMT or the file name's extension; ImportFormatError if neither."""
    if fmt:
        f = fmt.lower().strip().lstrip(".")
        f = {"json": "geojson", "geopackage": "gpkg", "xls": "xlsx", "excel": "xlsx"}.get(f, f)
        if f not in FORMATS:
            raise ImportFormatError(f"unsupported format '{fmt}'; use csv, xlsx, geojson or gpkg")
        return f
    suffix = Path(filename or "").suffix.lower()
    if suffix not in SUFFIX_FORMATS:
        raise ImportFormatError(
            f"cannot tell the format of '{filename}'; name it .csv, .xlsx, .geojson, .json or .gpkg, "
            "or give the format"
        )
    return SUFFIX_FORMATS[suffix]


def rejected(result: ImportResult, errors: list[RowError], started: float, what: str) -> ImportResult:
    result.ok = False
    result.error_count = len(errors)
    result.errors = [e.to_dict() for e in errors[:MAX_REPORTED_ERRORS]]
    rows = len({e.row for e in errors if e.row is not None})
    result.message = (
        f"{what}: {len(errors)} error(s)"
        + (f" in {rows} row(s)" if rows else "")
        + "; nothing was imported and the registry is unchanged."
    )
    result.seconds = time.perf_counter() - started
    return result


def iter_error_lines(result: ImportResult) -> Iterator[str]:
    """The row report as text lines (for the CLI)."""
    for e in result.errors:
        where = f"row {e['row']}" if e.get("row") is not None else "file"
        if e.get("line") is not None:
            where += f" (line {e['line']})"
        value = f" [{e['value']}]" if "value" in e else ""
        yield f"{where}, {e['field']}: {e['problem']}{value}"
    if result.error_count > len(result.errors):
        yield f"… and {result.error_count - len(result.errors)} more error(s)"
