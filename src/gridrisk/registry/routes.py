"""The HTTP API of a feature kind, derived from its description: one router per kind.

`build_router(kind)` registers, under the kind's path: `POST /import` (bulk, all rows or none), the
kind's own routes (`Extension.routes`: fixed paths before `{id}`), then create, search, read, change
(If-Match: 428 without, 412 when stale), close (soft), and history. The search takes bbox, paging,
`layer`+`cell` for kinds that colour cells, and the kind's filters as query parameters. Route
signatures are built from the description, so OpenAPI documents each kind's own names and filters.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, File, Form, Header, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from gridrisk.api.deps import PoolDep, Reader, SettingsDep, Writer
from gridrisk.api.etags import parse_if_match
from gridrisk.api.geojson import GEOJSON, paged_collection
from gridrisk.api.params import BBox, PageDep
from gridrisk.api.responses import OrjsonResponse
from gridrisk.errors import InvalidInput, UnsupportedMediaType
from gridrisk.imports.bulk_import import FORMATS, ImportFormatError, ImportResult, detect_format
from gridrisk.models.geojson import feature_collection
from gridrisk.registry import store
from gridrisk.registry.kind import FeatureKind
from gridrisk.vocabulary import CoordinateSystem

RECOLOURED = "; its cells are recoloured before this answers"
IfMatch = Annotated[str | None, Header(description="ETag of the version you read")]
Problem = {"content": {"application/problem+json": {}}}


def _signature(fn, params: list[tuple[str, Any, Any]]):
    """Give FN the keyword parameters PARAMS ((name, annotation, default)): FastAPI reads them."""
    empty = inspect.Parameter.empty
    fn.__signature__ = inspect.Signature(
        [
            inspect.Parameter(
                n, inspect.Parameter.KEYWORD_ONLY, annotation=a, default=empty if d is ... else d
            )
            for n, a, d in params
        ]
    )
    return fn


def build_router(kind: FeatureKind) -> APIRouter:
    """Every route of KIND: the derived registry and the kind's own."""
    router = APIRouter(tags=[kind.plural])
    _import_route(router, kind)
    if kind.extension.routes is not None:
        router.include_router(kind.extension.routes)
    _registry_routes(router, kind)
    return router


def _docs(kind: FeatureKind) -> dict[str, dict]:
    feature = {
        "content": {GEOJSON: {}},
        "model": kind.models.public,
        "description": kind.docs.get("feature", f"The {kind.noun} as a GeoJSON Feature"),
    }
    return {
        "feature": {200: feature},
        "conflict": {409: {"description": kind.docs.get("conflict", "The code is already registered")}},
        "stale": {
            412: {
                "description": f"Stale If-Match: the {kind.noun} changed since it was read "
                "(current ETag returned)"
            }
        },
        "missing": {428: {"description": "If-Match missing"}},
    }


def _registry_routes(router: APIRouter, kind: FeatureKind) -> None:
    docs, extra, idp = _docs(kind), kind.responses, kind.id_param
    recoloured = RECOLOURED if kind.colours_cells else ""
    item = f"{kind.path}/{{{idp}}}"

    async def create_feature(body, pool, who):
        async with pool.connection() as conn, conn.transaction():
            return await store.create(conn, kind, body, who.name)

    router.add_api_route(
        kind.path,
        _signature(
            create_feature, [("body", kind.models.create, ...), ("pool", PoolDep, ...), ("who", Writer, ...)]
        ),
        methods=["POST"],
        status_code=201,
        name=f"create_{kind.name}",
        summary=f"Register a {kind.noun}{recoloured}",
        description=kind.docs.get("create"),
        responses={201: docs["feature"][200], **docs["conflict"], **extra.get("create", {})},
    )
    _search_route(router, kind)

    async def get_feature(pool, reader, **kw):
        async with pool.connection() as conn:
            return await store.feature_response(conn, kind, kw[idp])

    router.add_api_route(
        item,
        _signature(get_feature, [(idp, int, ...), ("pool", PoolDep, ...), ("reader", Reader, ...)]),
        methods=["GET"],
        name=f"get_{kind.name}",
        summary=f"One {kind.noun} as a GeoJSON Feature",
        responses=docs["feature"],
    )

    async def update_feature(body, pool, who, if_match, **kw):
        if kind.extension.refuse_patch is not None:
            kind.extension.refuse_patch(kw[idp], body.model_dump(exclude_unset=True))
        expected = parse_if_match(if_match, required=True)
        async with pool.connection() as conn, conn.transaction():
            return await store.patch(conn, kind, kw[idp], body, who.name, expected)

    router.add_api_route(
        item,
        _signature(
            update_feature,
            [
                (idp, int, ...),
                ("body", kind.models.update, ...),
                ("pool", PoolDep, ...),
                ("who", Writer, ...),
                ("if_match", IfMatch, None),
            ],
        ),
        methods=["PATCH"],
        name=f"update_{kind.name}",
        summary=f"Change a {kind.noun} (If-Match with its ETag){recoloured}",
        description=kind.docs.get("update"),
        responses={
            **docs["feature"],
            **docs["stale"],
            **docs["missing"],
            **docs["conflict"],
            **extra.get("update", {}),
        },
    )

    async def close_feature(pool, who, if_match, **kw):
        expected = parse_if_match(if_match, required=False)
        async with pool.connection() as conn, conn.transaction():
            return await store.close(conn, kind, kw[idp], who.name, expected)

    router.add_api_route(
        item,
        _signature(
            close_feature,
            [
                (idp, int, ...),
                ("pool", PoolDep, ...),
                ("who", Writer, ...),
                ("if_match", Annotated[str | None, Header()], None),
            ],
        ),
        methods=["DELETE"],
        name=f"close_{kind.name}",
        summary=f"Close a {kind.noun} (soft delete: kept, with its history); If-Match optional",
        description=kind.docs.get("close"),
        responses={**docs["feature"], **docs["stale"], **extra.get("close", {})},
    )

    async def feature_history(pool, reader, **kw):
        async with pool.connection() as conn:
            return OrjsonResponse(await store.history(conn, kind, kw[idp]))

    router.add_api_route(
        f"{item}/history",
        _signature(feature_history, [(idp, int, ...), ("pool", PoolDep, ...), ("reader", Reader, ...)]),
        methods=["GET"],
        name=f"{kind.name}_history",
        response_model=list[kind.models.history_entry],
        summary=kind.docs.get(
            "history", f"Every version of a {kind.noun}: who, when, which fields changed from what to what"
        ),
        description=kind.docs.get("history_description"),
    )


def _search_route(router: APIRouter, kind: FeatureKind) -> None:
    params: list[tuple[str, Any, Any]] = [
        ("request", Request, ...),
        ("pool", PoolDep, ...),
        ("reader", Reader, ...),
        ("bbox", BBox, ...),
        ("page", PageDep, ...),
    ]
    if kind.colours_cells:
        params += [
            (
                "layer",
                Annotated[str | None, Query(max_length=64, description="With `cell`: the layer of the cell")],
                None,
            ),
            (
                "cell",
                Annotated[
                    str | None, Query(max_length=64, description=f"A cell code: {kind.plural} lying in it")
                ],
                None,
            ),
        ]
    params += [(f.key, f.annotation, None) for f in kind.filters]

    async def search_features(request, pool, reader, bbox, page, layer=None, cell=None, **filters):
        if (layer is None) != (cell is None):
            raise InvalidInput(
                "Give both `layer` and `cell` (a cell code of that layer), or neither.",
                errors=[{"field": "cell" if cell is None else "layer", "message": "required together"}],
            )
        values = {
            f.key: (f"%{filters[f.key]}%" if f.like and filters[f.key] else filters[f.key])
            for f in kind.filters
        }
        async with pool.connection() as conn:
            cell_id = await store.cell_id(conn, layer, cell) if cell is not None else None
            if kind.extension.search is not None:
                answer = await kind.extension.search(conn, filters, cell_id)
                if answer is not None:
                    return answer
            query = {**values, "bbox": bbox, "cell_id": cell_id, "limit": page.limit, "offset": page.offset}
            matched, features = await store.search(conn, kind, query)
        return paged_collection(
            request, offset=page.offset, limit=page.limit, matched=matched, features=features
        )

    router.add_api_route(
        kind.path,
        _signature(search_features, params),
        methods=["GET"],
        name=f"list_{kind.name}s",
        summary=kind.docs.get("search", f"Search {kind.plural} (GeoJSON, paged by id)"),
        responses={
            200: {
                "content": {GEOJSON: {}},
                "model": feature_collection(kind.models.public),
                "description": "FeatureCollection with numberMatched, numberReturned and links",
            }
        },
    )


def _import_description(kind: FeatureKind) -> str:
    required, optional = kind.file_columns
    parts = [
        f"CSV columns: {', '.join(required)}, lon, lat (or wkt), and optionally {', '.join(optional)}.",
        "Excel (.xlsx, .xls): the first sheet, a header row and the same columns as the CSV.",
        f"GeoJSON: a FeatureCollection with the same property names (what GET {kind.path} returns reads",
        "back; a `crs` member naming another CRS is converted to WGS 84). GeoPackage: its first layer with",
        "geometries, converted from the layer's CRS.",
        kind.bulk.notes,
        f"Every row is checked by the rules of POST {kind.path}; {kind.plural} are upserted by {kind.key},",
        "and the file is imported whole or not at all.",
    ]
    return " ".join(p for p in parts if p)


def _run_import(
    kind: FeatureKind,
    database_url: str,
    data: bytes,
    fmt: str,
    actor: str,
    dry_run: bool = False,
    coordinates: str | None = None,
) -> ImportResult:
    """The whole import on its own sync connection; committed on success, rolled back otherwise.

    A dry run does all of it, database checks and upsert included, so its report is the real one,
    and rolls it all back.
    """
    from gridrisk.registry.bulk import import_file

    with psycopg.connect(database_url, application_name="gridrisk-import") as conn:
        if dry_run:  # the import's own transaction becomes a savepoint inside this one
            with conn.transaction(force_rollback=True):
                return import_file(conn, kind, data, fmt=fmt, actor=actor, coordinates=coordinates)
        result = import_file(conn, kind, data, fmt=fmt, actor=actor, coordinates=coordinates)
        if not result.ok:
            conn.rollback()
    return result


ImportFile = Annotated[
    UploadFile, File(description="The CSV, Excel (.xlsx, .xls), GeoJSON or GeoPackage file")
]
ImportFormat = Annotated[
    str | None, Form(description=f"{', '.join(FORMATS)}; by default taken from the file name's extension")
]


def _import_route(router: APIRouter, kind: FeatureKind) -> None:
    async def import_features(
        settings: SettingsDep,
        who: Writer,
        file: ImportFile,
        format: ImportFormat = None,
        dry_run: Annotated[
            bool, Form(description="Check every row as the import would, report, and write nothing")
        ] = False,
        coordinates: Annotated[
            CoordinateSystem,
            Form(
                description="What the file's lon/lat are: WGS 84 (GPS, the default), GCJ-02 (picked on Amap "
                "or Tencent maps) or BD-09 (Baidu maps); the last two are converted to WGS 84"
            ),
        ] = "WGS84",
    ):
        try:
            fmt = detect_format(file.filename, format)
        except ImportFormatError as exc:
            raise UnsupportedMediaType(f"{str(exc)[0].upper()}{str(exc)[1:]}.") from exc
        data = await file.read()
        # Parsing, validating and the database work all block: keep them off the event loop.
        result = await run_in_threadpool(
            _run_import, kind, settings.database_url, data, fmt, who.name, dry_run, coordinates
        )
        if not result.ok:
            raise InvalidInput(result.message, report=result.report())
        return OrjsonResponse({**result.summary(), "dry_run": dry_run})

    router.add_api_route(
        f"{kind.path}/import",
        import_features,
        methods=["POST"],
        name=f"import_{kind.name}s",
        summary=f"Upsert {kind.plural} by {kind.key} from a CSV, Excel, GeoJSON or GeoPackage file:"
        " all rows or none" + ("; the map is current when this answers" if kind.colours_cells else ""),
        description=_import_description(kind),
        responses={
            200: {"description": f"Imported: counts of inserted, updated and unchanged {kind.plural}"},
            415: {"description": "Not a CSV, Excel, GeoJSON or GeoPackage file", **Problem},
            422: {
                "description": "Rejected, nothing written; `report.errors` lists row, field and problem",
                **Problem,
            },
        },
    )
