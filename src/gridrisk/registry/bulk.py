"""Bulk import of any feature kind: every row checked by the kind's Create model, then all or nothing.

A file (CSV, GeoJSON, GeoPackage; `registry.files`) becomes raw records; each record's values go
through the kind's `Bulk.from_row` and are validated by the SAME pydantic Create model as
`POST <path>` (one `TypeAdapter(list[Create])` call), plus the kind's cross-field checks and
uniqueness inside the file. The clean rows are COPYed into a temporary table `import_stage`, where
the checks that need the database run set-based (reference lookups, inside the city, unique values
held by other features, the kind's own checks). Only when no row has an error are the features
upserted by code in ONE statement: the table's triggers then assign cells, recolour the map and
write the history inside it. The write is a savepoint in the caller's transaction.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from pyproj import CRS

from gridrisk.db.sql_files import sql
from gridrisk.imports.bulk_import import ImportResult, RowError, detect_format, rejected
from gridrisk.registry.files import Parsed, Record, column_names, read_file
from gridrisk.registry.kind import FeatureKind
from gridrisk.registry.validate import Batch, ewkb, validate_records

Progress = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------------
# Writing


class _Rejected(Exception):
    """Raised inside the savepoint to roll it back when the database-side checks find errors."""


def _q(name: str) -> str:
    return f'"{name}"'


@cache
def _stage_sql(kind: FeatureKind) -> str:
    """The staging table: the kind's columns typed as its table's (no constraints), dropped at commit."""
    cols = ", ".join(_q(c) for c in kind.columns)
    return (
        "CREATE TEMP TABLE import_stage ON COMMIT DROP AS SELECT NULL::integer AS row_no, "
        f"{cols}, geom FROM {_q(kind.table)} WITH NO DATA"
    )


@cache
def upsert_sql(kind: FeatureKind) -> str:
    """One INSERT ... ON CONFLICT over the staged rows: an unchanged row is no write at all.

    `excluded` carries the row as the BEFORE INSERT triggers left it, so computed columns compare
    like for like; geometries compare at 1e-7° (about a centimetre: the precision GET exports), so a
    file read back from GET is unchanged. ORDER BY the key: concurrent imports lock rows in the same
    order and cannot deadlock. Columns in `Bulk.keep` are set for new features only.
    """
    t, key = _q(kind.table), _q(kind.key)
    cols = ", ".join(_q(c) for c in kind.columns)
    changing = [_q(c) for c in kind.columns if c != kind.key and c not in kind.bulk.keep]
    snap = "ST_AsEWKB(ST_SnapToGrid({}.geom, 1e-7))"
    return f"""
WITH up AS (
    INSERT INTO {t} AS t ({cols}, geom, created_by, updated_by)
    SELECT {cols}, geom, %(actor)s, %(actor)s FROM import_stage ORDER BY {key}
    ON CONFLICT ({key}) DO UPDATE SET
        {", ".join(f"{c} = excluded.{c}" for c in changing)}, geom = excluded.geom,
        version = t.version + 1, updated_at = now(), updated_by = excluded.updated_by
    WHERE ({", ".join(f"t.{c}" for c in changing)})
          IS DISTINCT FROM ({", ".join(f"excluded.{c}" for c in changing)})
       OR (ST_AsEWKB(t.geom) <> ST_AsEWKB(excluded.geom)
           AND {snap.format("t")} <> {snap.format("excluded")})
    -- xmax is 0 on a freshly inserted row version, the updating transaction's id on an update.
    RETURNING (t.xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS updated FROM up
"""


@cache
def _checks_sql(kind: FeatureKind) -> list[tuple[str, Any]]:
    """The set-based checks: (statement returning (row_no, field, problem, value), how to read it)."""
    out: list[tuple[str, Any]] = []
    for lookup in kind.lookups:
        c, table, key = _q(lookup.field), _q(lookup.table), _q(lookup.key)
        known = f"(SELECT string_agg({key}, ', ' ORDER BY {key}) FROM {table} WHERE {lookup.where})"
        statement = (
            f"SELECT s.row_no, s.{c}, {known} FROM import_stage s WHERE s.{c} IS NOT NULL AND NOT EXISTS"
            f" (SELECT 1 FROM {table} k WHERE {lookup.where} AND k.{key} = s.{c}) ORDER BY s.row_no"
        )
        out.append(
            (
                statement,
                lambda row, lookup=lookup: (row[0], lookup.field, lookup.problem(row[1], row[2])[0], row[1]),
            )
        )
    if kind.geometry.inside_city:
        out.append((sql("registry_import_outside"), lambda row: (row[0], None, row[1], row[2])))
    for column in kind.unique[1:]:
        c, key = _q(column), _q(kind.key)
        out.append(
            (
                f"SELECT s.row_no, s.{c}, r.{key} FROM import_stage s JOIN {_q(kind.table)} r"
                f" ON r.{c} = s.{c} AND r.{key} <> s.{key} ORDER BY s.row_no",
                lambda row, column=column: (
                    row[0],
                    column,
                    f"The {column} is already registered to {kind.noun} {row[2]}.",
                    row[1],
                ),
            )
        )
    out += [(sql(name), tuple) for name in kind.bulk.checks]
    return out


def _stage(conn: psycopg.Connection, kind: FeatureKind, batch: Batch, tick: Callable[[int], None]) -> None:
    """COPY the clean rows into the temporary staging table."""
    conn.execute("DROP TABLE IF EXISTS import_stage")
    conn.execute(_stage_sql(kind))
    n = len(batch)
    step = max(1, n // 50)
    columns = ", ".join(_q(c) for c in kind.columns)
    with conn.cursor().copy(f"COPY import_stage (row_no, {columns}, geom) FROM STDIN") as copy:
        for i, (row_no, values, geom) in enumerate(zip(batch.rows, batch.values, ewkb(batch), strict=True)):
            copy.write_row((row_no, *values, geom))
            if i % step == 0:
                tick(i)
    tick(n)
    conn.execute("ANALYZE import_stage")


def _db_checks(conn: psycopg.Connection, kind: FeatureKind, batch: Batch) -> list[RowError]:
    """Fill what the database derives, then the checks that need it, set-based over the stage."""
    if kind.geometry.district:
        conn.execute(sql("registry_import_district"))
    for name in kind.bulk.derive:
        conn.execute(sql(name))
    where = {row: i for i, row in enumerate(batch.rows)}
    errors = []
    for statement, read in _checks_sql(kind):
        for found in conn.execute(statement).fetchall():
            row_no, field_, problem, value = read(found)
            i = where[row_no]
            errors.append(RowError(row_no, field_ or batch.located_by[i], problem, value, batch.lines[i]))
    return errors


def write_batch(
    conn: psycopg.Connection,
    kind: FeatureKind,
    batch: Batch,
    *,
    actor: str,
    progress: Progress | None = None,
    stages: dict[str, float] | None = None,
    check_only: bool = False,
) -> tuple[int, int, list[RowError]]:
    """Stage, check and upsert a validated batch in the caller's transaction: (inserted, updated, errors).

    On errors, or with CHECK_ONLY, nothing is upserted; the caller rolls back (the stage goes with it).
    """
    report = progress or (lambda *_: None)
    stages = stages if stages is not None else {}
    n = len(batch)
    t = time.perf_counter()
    # Imports of one kind queue behind each other instead of contending for the same rows and cells.
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"gridrisk:{kind.table}_import",))
    _stage(conn, kind, batch, lambda done: report("staging", done, n))
    stages["copy"] = time.perf_counter() - t
    t = time.perf_counter()
    report("checking", 0, 1)
    errors = _db_checks(conn, kind, batch)
    report("checking", 1, 1)
    stages["db_checks"] = time.perf_counter() - t
    if errors or check_only:
        return 0, 0, errors
    t = time.perf_counter()
    report("writing", 0, n)
    with _trigger_plans(conn, kind.colours_cells):
        statement = sql(kind.bulk.upsert) if kind.bulk.upsert else upsert_sql(kind)
        inserted, updated = conn.execute(statement, {"actor": actor}).fetchone()
    report("writing", n, n)
    stages["upsert"] = time.perf_counter() - t
    return inserted, updated, []


class _trigger_plans:
    """For tables whose triggers recolour cells: no materialised or sequential inner scans meanwhile.

    The triggers plan their joins with the statistics from before the statement. When those say
    the registry and its cell table are nearly empty (after a rolled-back import, or an ANALYZE
    that ran while an import was in flight), the recolour joins become nested loops over
    materialised or sequential scans: quadratic, hours for 100,000 rows. With both disabled for
    the one statement the planner probes the primary keys instead; with good statistics the plans
    are as fast (the spatial joins use the GiST indexes anyway).
    """

    def __init__(self, conn: psycopg.Connection, active: bool) -> None:
        self.conn, self.active, self.saved = conn, active, None

    def __enter__(self) -> None:
        if self.active:
            self.saved = self.conn.execute(
                "SELECT current_setting('enable_material'), current_setting('enable_seqscan')"
            ).fetchone()
            self.conn.execute(
                "SELECT set_config('enable_material', 'off', true), set_config('enable_seqscan', 'off', true)"
            )

    def __exit__(self, *exc: object) -> None:
        if self.active and exc[0] is None:
            self.conn.execute(
                "SELECT set_config('enable_material', %s, true), set_config('enable_seqscan', %s, true)",
                self.saved,
            )


# ---------------------------------------------------------------------------------------------
# The import


def import_records(
    conn: psycopg.Connection,
    kind: FeatureKind,
    records: list[Record],
    *,
    actor: str,
    crs: CRS | None = None,
    coordinates: str | None = None,
    progress: Progress | None = None,
    started: float | None = None,
    stages: dict[str, float] | None = None,
    what: str = "The import was rejected",
) -> ImportResult:
    """Validate RECORDS and upsert them all in one transaction (a savepoint inside the caller's).

    COORDINATES: "GCJ-02" or "BD-09" when the records' lon/lat are a Chinese web map's (converted).
    """
    with _no_gc():
        result = _import_records(
            conn, kind, records, actor, crs, coordinates, progress, started, stages, what
        )
    result.coordinates = coordinates
    return result


@contextmanager
def _no_gc():
    """The cyclic collector off meanwhile: validating makes ~10 objects a row that all stay alive until
    the COPY, so every collection would re-scan them all (it doubled the time). Nothing here makes
    cycles; reference counting frees the rest, and the collector runs again afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _import_records(
    conn, kind, records, actor, crs, coordinates, progress, started, stages, what
) -> ImportResult:
    started = time.perf_counter() if started is None else started
    report = progress or (lambda *_: None)
    stages = {} if stages is None else stages
    result = ImportResult(ok=True, rows=len(records), stages=stages)
    t = time.perf_counter()
    report("validating", 0, len(records))
    batch, errors = validate_records(kind, records, crs, coordinates)
    report("validating", len(records), len(records))
    stages["validate"] = time.perf_counter() - t
    if not records:
        errors.append(RowError(None, "file", f"The file holds no {kind.plural}."))
    if not len(batch):
        return rejected(result, errors, started, what)
    try:
        with conn.transaction():
            # Rows with errors stay out of the batch; the rest still get the database checks, so
            # the report is complete in one pass. Any error at all and nothing is upserted.
            inserted, updated, db_errors = write_batch(
                conn, kind, batch, actor=actor, progress=progress, stages=stages, check_only=bool(errors)
            )
            if errors or db_errors:
                errors = sorted(errors + db_errors, key=lambda e: e.row or 0)
                raise _Rejected
    except _Rejected:
        return rejected(result, errors, started, what)
    result.inserted, result.updated = inserted, updated
    result.unchanged = len(batch) - inserted - updated
    result.seconds = time.perf_counter() - started
    result.message = (
        f"{len(batch)} {kind.noun}(s): {inserted} inserted, {updated} updated, {result.unchanged} unchanged."
    )
    return result


def read(kind: FeatureKind, path_or_bytes: str | Path | bytes, fmt: str | None = None) -> Parsed:
    """Read a file of KIND's rows (FMT: csv, xlsx, geojson or gpkg; by default from the name or the bytes)."""
    if isinstance(path_or_bytes, bytes | bytearray | memoryview):
        data = bytes(path_or_bytes)
        if fmt:
            fmt = detect_format(None, fmt)
        else:
            fmt = _sniff(data)
    else:
        path = Path(path_or_bytes)
        fmt = detect_format(path.name, fmt)
        data = path.read_bytes()
    required, optional = kind.file_columns
    return read_file(data, fmt, column_names(required + optional, kind.bulk.aliases), required)


def _sniff(data: bytes) -> str:
    """The format of an unnamed file from its first bytes (Excel: a zip, or an OLE2 compound file)."""
    if data.startswith(b"SQLite format 3"):
        return "gpkg"
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return "xlsx"
    return "geojson" if data.lstrip()[:1] == b"{" else "csv"


def import_file(
    conn: psycopg.Connection,
    kind: FeatureKind,
    path_or_bytes: str | Path | bytes,
    *,
    fmt: str | None = None,
    actor: str,
    coordinates: str | None = None,
    progress: Progress | None = None,
) -> ImportResult:
    """Upsert KIND's features by code from a CSV, Excel, GeoJSON or GeoPackage file: all rows or none.

    The write is a savepoint in the caller's transaction, which the caller commits (a connection
    used as a context manager does); on rejection it is rolled back and nothing is written. Rows are
    numbered from 1 (the first data row or feature); CSV errors also carry the file `line`. Raises
    ImportFormatError for a format that is none of these.
    """
    started = time.perf_counter()
    report = progress or (lambda *_: None)
    stages: dict[str, float] = {}
    report("reading", 0, 1)
    parsed = read(kind, path_or_bytes, fmt)
    report("reading", 1, 1)
    stages["read"] = time.perf_counter() - started
    if parsed.file_errors:
        result = ImportResult(ok=False, stages=stages)
        return rejected(result, parsed.file_errors, started, "The file cannot be imported")
    return import_records(
        conn,
        kind,
        parsed.records,
        actor=actor,
        crs=parsed.crs,
        coordinates=coordinates,
        progress=progress,
        started=started,
        stages=stages,
    )
