"""Layers and their cells: list, page, one cell, the crosswalk, and import (admin)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import orjson
from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from gridrisk.api.deps import Admin, PoolDep, Reader, SettingsDep
from gridrisk.api.geojson import GEOJSON, feature_collection, page_links, raw_json
from gridrisk.api.params import BBox, PageDep
from gridrisk.api.responses import OrjsonResponse
from gridrisk.errors import InvalidInput
from gridrisk.models.layers import LayerPublic, OverlapPublic
from gridrisk.services.records import cell_feature_or_404, cell_id_or_404, fetch_all, fetch_one, layer_or_404

router = APIRouter(tags=["layers"])


@router.get("/layers", response_model=list[LayerPublic], summary="Every layer with counts, area and gaps")
async def list_layers(pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        rows = await fetch_all(conn, "layer_list")
    out = []
    for r in rows:
        box = r.pop("bbox")
        stats = r.pop("stats") or {}
        out.append(
            {
                **r,
                "bbox": _box_to_list(box),
                "gap_area_m2": stats.get("gap_area_m2"),
                "overlap_area_m2": stats.get("overlap_area_m2"),
                "gap_area_crs": f"EPSG:{stats['metric_srid']}" if stats.get("metric_srid") else None,
            }
        )
    return OrjsonResponse(out)


def _box_to_list(box) -> list[float] | None:
    # ST_Extent arrives as 'BOX(minx miny,maxx maxy)'.
    if not box:
        return None
    inner = str(box)[4:-1].replace(",", " ").split()
    return [round(float(v), 7) for v in inner]


@router.get(
    "/layers/{layer}/cells",
    summary="A layer's cells as GeoJSON, paged",
    responses={200: {"content": {GEOJSON: {}}, "description": "FeatureCollection, paged"}},
)
async def list_cells(layer: str, request: Request, pool: PoolDep, bbox: BBox, page: PageDep, _: Reader):
    async with pool.connection() as conn:
        await layer_or_404(conn, layer, list_layers=True)
        params = {"layer": layer, "bbox": bbox, "limit": page.limit, "offset": page.offset}
        row = await fetch_one(conn, "cells_page", params)
    matched = row["matched"]
    returned = max(0, min(page.limit, matched - page.offset))
    links = page_links(request, offset=page.offset, limit=page.limit, returned=returned, matched=matched)
    extra = (
        b'"numberMatched":%d,"numberReturned":%d,"links":' % (matched, returned) + orjson.dumps(links) + b","
    )
    return feature_collection(row["features"], extra=extra)


@router.get(
    "/layers/{layer}/cells/{code}",
    summary="One cell as a GeoJSON Feature with its properties and workers",
    responses={200: {"content": {GEOJSON: {}}, "description": "Feature"}},
)
async def get_cell(layer: str, code: str, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        await layer_or_404(conn, layer, list_layers=True)
        feature = await cell_feature_or_404(conn, layer, code)
    return raw_json(feature)


@router.get(
    "/layers/{layer}/cells/{code}/overlaps",
    response_model=list[OverlapPublic],
    summary="The cells of every other layer that this cell overlaps, with shares",
)
async def cell_overlaps(layer: str, code: str, pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        await layer_or_404(conn, layer, list_layers=True)
        await cell_id_or_404(conn, layer, code)
        rows = await fetch_all(conn, "cell_overlaps", {"layer": layer, "code": code})
    return OrjsonResponse(rows)


@router.post(
    "/layers/{layer}/import",
    summary="Import a layer from a file (GeoJSON, GeoPackage, zipped Shapefile, GeoParquet); admin",
    responses={
        200: {"description": "Imported; the validation report and what changed"},
        422: {
            "description": "Rejected; the validation report says why",
            "content": {"application/problem+json": {}},
        },
    },
)
async def import_layer(
    layer: str,
    pool: PoolDep,
    settings: SettingsDep,
    _: Admin,
    file: Annotated[UploadFile, File(description="The layer file")],
    code_field: Annotated[str | None, Form()] = None,
    name_field: Annotated[str | None, Form()] = None,
    encoding: Annotated[
        str | None,
        Form(
            max_length=32,
            description="A zipped shapefile's text encoding (e.g. GBK); by default its .cpg says, else the "
            "text is read as UTF-8 if it is, else as GB18030 (the report's summary.text_encoding says which)",
        ),
    ] = None,
    repair: Annotated[bool, Form(description="Repair invalid geometries instead of rejecting them")] = False,
    allow_gaps: Annotated[bool, Form(description="Accept a grid covering only part of the city")] = False,
    dry_run: Annotated[
        bool, Form(description="Check the file and return the full report; write nothing (result is null)")
    ] = False,
):
    from gridrisk.imports.grid_import import import_layer_file

    async with pool.connection() as conn:
        await layer_or_404(conn, layer, list_layers=True)
    suffix = Path(file.filename or "upload").suffix.lower() or ".geojson"
    with tempfile.TemporaryDirectory(prefix="gridrisk-import-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        with path.open("wb") as fh:
            while chunk := await file.read(1 << 20):
                fh.write(chunk)
        # Reading, validating and writing are CPU and blocking I/O: keep them off the event loop.
        outcome = await run_in_threadpool(
            import_layer_file,
            settings.database_url,
            layer,
            path,
            code_field=code_field,
            name_field=name_field,
            encoding=encoding,
            repair=repair,
            allow_gaps=allow_gaps,
            source=file.filename,
            dry_run=dry_run,
        )
    if not outcome.ok:
        raise InvalidInput(outcome.message, report=outcome.report)
    return OrjsonResponse(
        {"report": outcome.report, "result": outcome.result, "dry_run": dry_run, "message": outcome.message}
    )
