"""Bulk import of risk sources from a CSV or GeoJSON upload (operator or admin): all rows or none."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from gridrisk.api.deps import SettingsDep, Writer
from gridrisk.api.responses import OrjsonResponse
from gridrisk.errors import InvalidInput, UnsupportedMediaType
from gridrisk.imports.bulk_import import ImportFormatError, ImportResult, detect_format
from gridrisk.imports.risk_source_import import import_risk_sources

router = APIRouter(tags=["risk sources"])


def _run_import(database_url: str, data: bytes, fmt: str, actor: str) -> ImportResult:
    """The whole import on its own sync connection; committed on success, rolled back otherwise."""
    with psycopg.connect(database_url, application_name="gridrisk-import") as conn:
        result = import_risk_sources(conn, data, fmt=fmt, actor=actor)
        if not result.ok:
            conn.rollback()
    return result


@router.post(
    "/risk-sources/import",
    summary="Upsert risk sources by code from a CSV or GeoJSON file; the map is current when this answers",
    description=(
        "CSV columns: code, name, category, lon, lat (or wkt), and optionally address, plate_code, "
        "enterprise, department, method (LEC | LS | direct), L, E, C, S, level, reason, status. "
        "GeoJSON: a FeatureCollection of Point/Polygon/MultiPolygon features with the same property "
        "names (a `crs` member naming another CRS is converted to WGS 84). With LEC or LS, `level` "
        "and `reason` record an override. The file is imported whole or not at all."
    ),
    responses={
        200: {"description": "Imported: counts of inserted, updated and unchanged sources"},
        415: {"description": "Not a CSV or GeoJSON file", "content": {"application/problem+json": {}}},
        422: {
            "description": "Rejected, nothing written; `report.errors` lists row, field and problem",
            "content": {"application/problem+json": {}},
        },
    },
)
async def import_sources(
    settings: SettingsDep,
    who: Writer,
    file: Annotated[UploadFile, File(description="The CSV or GeoJSON file")],
    format: Annotated[
        str | None, Form(description="csv or geojson; by default taken from the file name's extension")
    ] = None,
):
    try:
        fmt = detect_format(file.filename, format)
    except ImportFormatError as exc:
        raise UnsupportedMediaType(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from exc
    data = await file.read()
    # Parsing, validating and the database work all block: keep them off the event loop.
    result = await run_in_threadpool(_run_import, settings.database_url, data, fmt, who.name)
    if not result.ok:
        raise InvalidInput(result.message, report=result.report())
    return OrjsonResponse(result.summary())
