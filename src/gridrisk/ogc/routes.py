"""The /ogc routes: each reads its parameters, runs what collections.py composes, answers in JSON or HTML.

GDAL's OAPIF driver, OWSLib and QGIS read every collection through them (the package is described
in ogc/__init__.py). The items path is the hot one: one statement builds the page's GeoJSON in
PostgreSQL, and Python writes the envelope and links around it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
from fastapi import APIRouter, Path, Request

from gridrisk.api.deps import PoolDep, Reader
from gridrisk.api.geojson import GEOJSON, raw_json
from gridrisk.api.responses import OrjsonResponse
from gridrisk.api.routes.web import swagger_page
from gridrisk.db.sql_files import sql
from gridrisk.errors import NotFound
from gridrisk.ogc import html
from gridrisk.ogc.collections import COLLECTIONS, extents_sql, item_sql
from gridrisk.ogc.crs import GCJ02, STORAGE, content_crs, listed, parse_crs, shift_to_gcj02
from gridrisk.ogc.documents import (
    HTML,
    JSON,
    base_url,
    collection_body,
    feature_schema,
    item_links,
    item_page,
    items_links,
    items_page,
    landing_links,
    queryables_schema,
    self_links,
)
from gridrisk.ogc.models import (
    CONFORMANCE,
    OPENAPI_30,
    SCHEMA_JSON,
    CollectionInfo,
    Collections,
    Conformance,
    Feature,
    FeatureCollection,
    LandingPage,
)
from gridrisk.ogc.openapi import openapi_document, with_server
from gridrisk.ogc.query import (
    BASIC,
    ITEM,
    ITEMS,
    check_params,
    documented,
    feature_key,
    get_collection,
    items_query,
    wants_html,
)

router = APIRouter(prefix="/ogc", tags=["OGC API – Features"])

CollectionId = Path(description="A collection id: " + ", ".join(COLLECTIONS))


def _answers(model: type | None, *types: str) -> dict:
    """The documented 200 answer: MODEL (None: not described) in each media type of TYPES."""
    out: dict[str, Any] = {"content": {t: {} for t in types}, "description": "OK"}
    if model is not None:
        out["model"] = model
    return {200: out}


def _get(path: str, summary: str, model: type | None, types: tuple[str, ...], params=BASIC, **more):
    """A GET route of /ogc, documented with its answers and the query parameters it checks by hand."""
    return router.get(
        path, summary=summary, responses=_answers(model, *types), openapi_extra=documented(params), **more
    )


async def _extents(pool, ids: tuple[str, ...]) -> tuple[dict[str, dict], list[str]]:
    """The collections' extents, and the CRSs they list (the city's metric zone among them)."""
    async with pool.connection() as conn:
        cur = await conn.execute(extents_sql(ids))
        extents = {row["id"]: row for row in await cur.fetchall()}
        cur = await conn.execute(sql("city_profile"))
        profile = await cur.fetchone()
    return extents, listed(profile["metric_srid"] if profile else 4549)


# ---------------------------------------------------------------------------------------------
# Landing page, conformance, API


@_get("", "OGC API – Features landing page", LandingPage, (JSON, HTML))
async def landing(request: Request, _: Reader):
    check_params(request.query_params, BASIC)
    as_html = wants_html(request)
    body = {
        "title": "gridrisk – OGC API – Features",
        "description": "The city's three grids with their four-colour risk map, its districts, risk "
        "sources, shelters and hazard points, for GIS clients (QGIS, GDAL/OGR, OWSLib). "
        "Coordinates are WGS 84 longitude/latitude (CRS84) unless `crs` asks for another (OGC API – "
        "Features Part 2: EPSG:4326, CGCS2000 EPSG:4490, its Gauss-Kruger zones, Web Mercator).",
        "links": landing_links(request, as_html),
    }
    if as_html:
        return html.render("landing.html", base=base_url(request), links=body["links"], body=body)
    return OrjsonResponse(body)


@_get("/conformance", "The OGC conformance classes served", Conformance, (JSON, HTML))
async def conformance(request: Request, _: Reader):
    check_params(request.query_params, BASIC)
    if wants_html(request):
        links = self_links(request, True)
        return html.render("conformance.html", base=base_url(request), links=links, conforms_to=CONFORMANCE)
    return OrjsonResponse({"conformsTo": CONFORMANCE})


@_get("/api", "The OpenAPI 3.0 description of /ogc (f=html: browsable)", None, (OPENAPI_30, HTML))
async def api(request: Request, _: Reader):
    check_params(request.query_params, BASIC)
    base = base_url(request)
    if wants_html(request):
        return swagger_page(request, f"{base}/api?f=json", "gridrisk – OGC API – Features")
    return OrjsonResponse(with_server(_openapi(), base), media_type=OPENAPI_30)


@cache
def _openapi() -> dict[str, Any]:
    """The 3.0 document of this router, built once (on the first request: every route exists by then)."""
    return openapi_document(router)


# ---------------------------------------------------------------------------------------------
# Collections


@_get(
    "/collections",
    "The feature collections, with the spatial and temporal extent of their data",
    Collections,
    (JSON, HTML),
)
async def collections(request: Request, pool: PoolDep, _: Reader):
    check_params(request.query_params, BASIC)
    as_html = wants_html(request)
    base = base_url(request)
    extents, crs = await _extents(pool, tuple(COLLECTIONS))
    body = {
        "links": self_links(request, as_html),
        "crs": crs,  # Part 2: the CRSs every collection serves (each lists them again)
        "collections": [collection_body(c, extents.get(c.id), base, crs) for c in COLLECTIONS.values()],
    }
    if as_html:
        return html.render("collections.html", base=base, links=body["links"], body=body)
    return OrjsonResponse(body)


@_get(
    "/collections/{collection_id}",
    "One collection: description, extent and links",
    CollectionInfo,
    (JSON, HTML),
)
async def collection(request: Request, pool: PoolDep, _: Reader, collection_id: str = CollectionId):
    c = get_collection(collection_id)
    check_params(request.query_params, BASIC)
    as_html = wants_html(request)
    base = base_url(request)
    extents, crs = await _extents(pool, (c.id,))
    body = collection_body(c, extents.get(c.id), base, crs)
    if as_html:
        others = [link for link in body["links"] if link["rel"] not in ("self", "alternate")]
        links = [*self_links(request, True), *others]
        return html.render("collection.html", base=base, links=links, c=c, body=body)
    return OrjsonResponse(body)


def _schema_route(name: str, summary: str, heading: str, properties, document) -> None:
    """/collections/{id}/NAME: a JSON Schema of the collection's PROPERTIES (by DOCUMENT), or a table."""

    @_get(f"/collections/{{collection_id}}/{name}", summary, None, (SCHEMA_JSON, HTML), name=name)
    async def route(request: Request, _: Reader, collection_id: str = CollectionId):
        c = get_collection(collection_id)
        check_params(request.query_params, BASIC)
        base = base_url(request)
        if wants_html(request):
            links = self_links(request, True, SCHEMA_JSON)
            props = properties(c)
            return html.render("properties.html", base=base, links=links, c=c, heading=heading, props=props)
        url = f"{base}/collections/{c.id}/{name}"
        return OrjsonResponse(document(c, url), media_type=SCHEMA_JSON)


_schema_route(
    "queryables",
    "The properties a collection's items filter on with ?name=value (JSON Schema)",
    "可查询属性 Queryables",
    lambda c: c.queryables,
    queryables_schema,
)
_schema_route(
    "schema",
    "JSON Schema of a collection's features (the `describedby` link)",
    "要素结构 Schema",
    lambda c: c.properties,
    feature_schema,
)


# ---------------------------------------------------------------------------------------------
# Items


@_get(
    "/collections/{collection_id}/items",
    "A collection's features as GeoJSON, paged by feature id (bbox, datetime, ?property=value)",
    FeatureCollection,
    (GEOJSON, HTML),
    params=ITEMS,
    description="Filters: `bbox` (CRS84, intersecting), `datetime` (on the collection's temporal property) "
    "and equality on the queryables (`/ogc/collections/{id}/queryables`, e.g. `?colour=red`). Items are "
    "ordered by feature id; follow `next` to page through everything. Unknown parameters get 400.",
)
async def items(request: Request, pool: PoolDep, _: Reader, collection_id: str = CollectionId):
    c = get_collection(collection_id)
    as_html = wants_html(request)
    query = items_query(c, request.query_params, html=as_html)
    async with pool.connection() as conn:
        # Binary results: the features arrive as bytes, copied once into the response.
        cur = await conn.execute(query.statement, query.values, binary=True)
        row = await cur.fetchone()
    matched, returned = row["matched"], row["returned"]
    links = items_links(
        request, c, as_html, limit=query.limit, offset=query.offset, returned=returned, matched=matched
    )
    if as_html:
        return html.render(
            "items.html",
            base=base_url(request),
            links=links,
            c=c,
            names=[p.name for p in c.properties],
            features=orjson.loads(b"[" + row["features"] + b"]"),
            matched=matched,
            offset=query.offset,
        )
    features = row["features"]
    if query.crs.uri == GCJ02 and features:
        features = shift_to_gcj02(features)
    return raw_json(
        items_page(features, links, matched=matched, returned=returned), headers=content_crs(query.crs)
    )


@_get(
    "/collections/{collection_id}/items/{feature_id}",
    "One feature of a collection (GeoJSON)",
    Feature,
    (GEOJSON, HTML),
    params=ITEM,
)
async def item(
    request: Request,
    pool: PoolDep,
    _: Reader,
    collection_id: str = CollectionId,
    feature_id: str = Path(description="A cell or district code, or a registry record's integer id"),
):
    c = get_collection(collection_id)
    check_params(request.query_params, ITEM)
    as_html = wants_html(request)
    crs = STORAGE if as_html else parse_crs(request.query_params.get("crs"), "crs")
    row = None
    if (key := feature_key(c, feature_id)) is not None:
        async with pool.connection() as conn:
            cur = await conn.execute(item_sql(c.id, crs.uri), {"id": key})
            row = await cur.fetchone()
    if row is None:
        raise NotFound(f"No feature '{feature_id}' in collection '{c.id}'.")
    links = item_links(request, c, as_html)
    if as_html:
        feature = orjson.loads(row["feature"])
        return html.render("item.html", base=base_url(request), links=links, c=c, feature=feature)
    feature = row["feature"]
    if crs.uri == GCJ02:
        feature = shift_to_gcj02(feature.encode()).decode()
    return raw_json(item_page(feature, links), headers=content_crs(crs))
