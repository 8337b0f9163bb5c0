"""Import a layer file: read, validate against the city outline, then replace the layer atomically."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg
import shapely

from gridrisk.imports.grid_files import GridFileError, read_layer_file
from gridrisk.imports.grid_validation import Tolerances, validate_cells
from gridrisk.services.city import read_profile
from gridrisk.services.layers import Progress, write_layer


@dataclass
class ImportOutcome:
    """The import's verdict: the validation report, and what was written when it passed."""

    ok: bool
    message: str
    report: dict[str, Any]
    result: dict[str, Any] | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def city_outline(conn: psycopg.Connection):
    """The city (union of the district layer) as a shapely geometry, or None before districts load."""
    row = conn.execute("SELECT ST_AsBinary(ST_Union(geom)) FROM city_parts").fetchone()
    return shapely.from_wkb(bytes(row[0])) if row and row[0] is not None else None


def import_layer_file(
    database_url: str,
    layer: str,
    path: Path,
    *,
    code_field: str | None = None,
    name_field: str | None = None,
    encoding: str | None = None,
    repair: bool = False,
    allow_gaps: bool = False,
    source: str | None = None,
    progress: Progress | None = None,
    dry_run: bool = False,
) -> ImportOutcome:
    """Validate PATH as LAYER and, when it has no errors, replace the layer in one transaction.

    DRY_RUN: the same reading and validation, the same report, and nothing written (not even the
    import log).
    """
    started = time.perf_counter()
    report_progress = progress or (lambda *_: None)
    with psycopg.connect(database_url) as conn:
        kind = conn.execute("SELECT kind FROM layers WHERE name = %s", (layer,)).fetchone()
        if kind is None:
            names = [r[0] for r in conn.execute("SELECT name FROM layers ORDER BY name")]
            return _rejected(
                conn, layer, source, f"no layer '{layer}'; layers: {', '.join(names)}", {}, started
            )
        report_progress("reading", 0, 1)
        try:
            read = read_layer_file(path, code_field=code_field, name_field=name_field, encoding=encoding)
        except GridFileError as exc:
            report = {
                "ok": False,
                "errors": [{"kind": "unreadable_file", "severity": "error", "message": str(exc)}],
            }
            return _rejected(conn, layer, source, str(exc), report, started)
        report_progress("reading", 1, 1)
        # The district layer defines the city, so it is not checked against itself.
        city = None if layer == "district" else city_outline(conn)
        report_progress("validating", 0, 1)
        # A grid that covers only part of the city is an error unless the caller says it is meant.
        tol = Tolerances(gap_warn_m2=float("inf")) if allow_gaps else Tolerances()
        metric = read_profile(conn).metric  # areas as the database will store them
        clean, validation = validate_cells(read.gdf, city, repair=repair, tol=tol, metric=metric)
        report = validation.to_dict()
        report_progress("validating", 1, 1)
        if not validation.ok:
            n = len(validation.errors)
            message = f"the file has {n} error(s); nothing was imported and layer '{layer}' is unchanged"
            if dry_run:
                return ImportOutcome(
                    ok=False, message=message, report=report, seconds=time.perf_counter() - started
                )
            return _rejected(conn, layer, source, message, report, started)
        if dry_run:
            return ImportOutcome(
                ok=True,
                message=f"dry run: {len(clean)} cells would be imported into '{layer}'; nothing was written",
                report=report,
                seconds=time.perf_counter() - started,
            )
        clean = clean[["code", "name", "name_en", "population", "district_code", "geometry"]]
        with conn.transaction():
            result = write_layer(conn, layer, clean, source=source or path.name, progress=progress)
            summary = report.get("summary", {})
            stats = {
                "gap_area_m2": summary.get("gap_area_m2"),
                "overlap_area_m2": summary.get("overlap_area_m2"),
                "warnings": len(validation.warnings),
                "repaired": len(validation.repaired),
                # The CRS the areas were measured in: a later change of the city's metric CRS
                # re-measures the cells, not these figures of the file as it was imported.
                "metric_srid": metric.epsg,
            }
            conn.execute(
                "UPDATE layers SET stats = %s::jsonb WHERE name = %s", (orjson.dumps(stats).decode(), layer)
            )
            seconds = time.perf_counter() - started
            _record(conn, layer, source, True, report, result.cells, seconds)
    return ImportOutcome(
        ok=True,
        message=f"imported {result.cells} cells into '{layer}'",
        report=report,
        result=result.to_dict(),
        seconds=seconds,
    )


def _rejected(conn, layer, source, message, report, started) -> ImportOutcome:
    seconds = time.perf_counter() - started
    with conn.transaction():
        _record(conn, layer, source, False, report or {"message": message}, 0, seconds)
    return ImportOutcome(ok=False, message=message, report=report, seconds=seconds)


def _record(conn, layer, source, ok, report, cells, seconds) -> None:
    """Keep every import attempt and its report, for the record."""
    conn.execute(
        "INSERT INTO layer_imports (layer, source, ok, report, cell_count, duration_s)"
        " VALUES (%s, %s, %s, %s::jsonb, %s, %s)",
        (layer, source, ok, orjson.dumps(report, default=str).decode(), cells, seconds),
    )


def print_report(outcome: ImportOutcome, console) -> None:
    """Print the validation report, one line per issue (readable in a terminal and in CI logs)."""
    report = outcome.report
    for severity, items, style in (
        ("error", report.get("errors", []), "red"),
        ("warning", report.get("warnings", []), "yellow"),
    ):
        for item in items[:100]:
            where = " ".join(f"{k}={item[k]}" for k in ("row", "code") if item.get(k) is not None)
            loc = item.get("location")
            at = f" at {loc[0]:.6f},{loc[1]:.6f}" if loc else ""
            console.print(
                f"[{style}]{severity}[/{style}] {item.get('kind')} {where}{at}: {item.get('message')}"
            )
        if len(items) > 100:
            console.print(f"… and {len(items) - 100} more {severity}s")
    if report.get("repaired"):
        console.print(f"repaired {len(report['repaired'])} invalid geometries")
    style = "green" if outcome.ok else "red"
    console.print(f"[{style}]{outcome.message}[/{style}] ({outcome.seconds:.1f} s)")
    if outcome.result:
        console.print(outcome.result)
