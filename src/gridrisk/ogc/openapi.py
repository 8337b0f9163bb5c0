"""The OpenAPI 3.0 document of /ogc (served at /ogc/api), generated from the routes and the registry.

FastAPI describes the whole service in OpenAPI 3.1 (/openapi.json); OGC clients (GDAL's OAPIF
driver, OWSLib, QGIS) want 3.0, with the paths of each collection and the query parameters its items
take. So nothing here is written per path: each route of the /ogc router gives one path (a route of
one collection, one per collection), with the route's summary, its query parameters (query.PARAMETERS;
an items page adds the collection's queryables), its path parameters as FastAPI reads them, and the
schemas of its answers from the pydantic models it declares (turned from JSON Schema into 3.0) or,
for features, from the collection's properties.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from gridrisk import __version__
from gridrisk.errors import PROBLEM_JSON, Problem
from gridrisk.ogc.collections import COLLECTIONS, Collection
from gridrisk.ogc.models import Feature, FeatureCollection
from gridrisk.ogc.query import PARAMETERS, query_parameter

_SCHEMAS = "#/components/schemas/"
_ERRORS = {
    "400": "A query parameter is malformed or unknown",
    "404": "No such collection or feature",
    "500": "Internal error",
}


def with_server(document: dict[str, Any], base: str) -> dict[str, Any]:
    """DOCUMENT (not copied deeply: never mutate the result) served from BASE, the URL of /ogc."""
    return {**document, "servers": [{"url": base}]}


def _openapi30(node: Any) -> Any:
    """JSON Schema as pydantic writes it, as an OpenAPI 3.0 schema: `anyOf: [X, null]` → X, nullable;
    `const` → a one-value enum."""
    if isinstance(node, list):
        return [_openapi30(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi30(v) for k, v in node.items()}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    options = out.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in out.pop("anyOf") if o != {"type": "null"}]
        if len(rest) > 1:
            out["anyOf"] = rest
        elif "$ref" in rest[0]:
            out["allOf"] = rest  # 3.0 allows nothing beside a $ref
        else:
            out.update(rest[0])
        out["nullable"] = True
    return out


def _collection_schemas(c: Collection, feature: dict, page: dict) -> dict[str, Any]:
    """The Feature and FeatureCollection schemas narrowed to C: its id type, geometries, properties."""
    props = {p.name: {**p.schema(), "nullable": True} for p in c.properties}
    geometry = {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": list(c.geometry_types)},
            "coordinates": {"type": "array", "items": {}},
        },
    }
    links = page["properties"]["links"]
    one = {
        **feature,
        "title": c.title,
        "properties": {
            **feature["properties"],
            "id": {"type": c.id_type},
            "geometry": geometry,
            "properties": {"type": "object", "properties": props},
            "links": links,
        },
    }
    items = {"type": "array", "items": {"$ref": f"{_SCHEMAS}{c.id}_feature"}}
    many = {**page, "title": c.title, "properties": {**page["properties"], "features": items}}
    return {f"{c.id}_feature": one, f"{c.id}_items": many}


def _operation(route: APIRoute, c: Collection | None) -> dict[str, Any]:
    """The GET operation of ROUTE (for collection C when the route is one collection's)."""
    answer = route.responses[200]
    model = answer.get("model")
    op: dict[str, Any] = {
        "tags": [c.id if c else "Capabilities"],
        "summary": route.summary,
        "operationId": f"{route.name}_{c.id}" if c else route.name,
    }
    params = [
        {
            "name": p.name,
            "in": "path",
            "required": True,
            "description": p.field_info.description or "",
            "schema": {"type": "string"},
        }
        for p in route.dependant.path_params
        if p.name != "collection_id"
    ]
    params += [{"$ref": f"#/components/parameters/{p['name']}"} for p in route.openapi_extra["parameters"]]
    if c is not None and model is FeatureCollection:
        op["description"] = (
            f"{c.description} Filters: bbox, datetime (on `{c.temporal}`), and equality on "
            + ", ".join(f"`{p.name}`" for p in c.queryables)
            + ". Unknown query parameters are refused (400)."
        )
        for p in c.queryables:
            schema = {k: v for k, v in p.schema().items() if k in ("type", "format", "enum")}
            described = f"Only items whose `{p.name}` equals this value ({p.description})."
            params.append(query_parameter(p.name, described, schema))
    op["parameters"] = params
    if c is not None and model in (Feature, FeatureCollection):
        ref = {"$ref": f"{_SCHEMAS}{c.id}_{'feature' if model is Feature else 'items'}"}
    else:
        ref = {"type": "object"} if model is None else {"$ref": f"{_SCHEMAS}{model.__name__}"}
    content = {t: {"schema": {"type": "string"} if t == "text/html" else ref} for t in answer["content"]}
    errors = [code for code in _ERRORS if code != "404" or c is not None]
    op["responses"] = {
        "200": {"description": answer["description"], "content": content},
        **{code: {"$ref": f"#/components/responses/{code}"} for code in errors},
    }
    return op


def openapi_document(router: APIRouter) -> dict[str, Any]:
    """The OpenAPI 3.0 description of ROUTER's routes, without its server URL: see `with_server`."""
    routes = [r for r in router.routes if isinstance(r, APIRoute)]
    per_collection = [r for r in routes if "{collection_id}" in r.path]
    paths: dict[str, Any] = {
        r.path.removeprefix(router.prefix) or "/": {"get": _operation(r, None)}
        for r in routes
        if r not in per_collection
    }
    for c in COLLECTIONS.values():
        for r in per_collection:
            path = r.path.removeprefix(router.prefix).replace("{collection_id}", c.id)
            paths[path] = {"get": _operation(r, c)}

    models = {r.responses[200]["model"] for r in routes if r.responses[200].get("model")} | {Problem}
    _, top = models_json_schema(
        [(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template=_SCHEMAS + "{model}",
    )
    schemas = _openapi30(top["$defs"])
    feature, page = schemas.pop(Feature.__name__), schemas.pop(FeatureCollection.__name__)
    for c in COLLECTIONS.values():
        schemas.update(_collection_schemas(c, feature, page))
    problem = {PROBLEM_JSON: {"schema": {"$ref": f"{_SCHEMAS}{Problem.__name__}"}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gridrisk – OGC API – Features",
            "version": __version__,
            "description": "The city's grids with their four-colour risk map, districts, risk sources, "
            "shelters and hazard points as OGC API – Features (Part 1: Core, GeoJSON, HTML). "
            "Coordinates are WGS 84 longitude/latitude (CRS84).",
        },
        "servers": [],  # with_server() fills it in, in this place
        "tags": [
            {"name": "Capabilities"},
            *({"name": c.id, "description": c.title} for c in COLLECTIONS.values()),
        ],
        "paths": paths,
        "components": {
            "parameters": {name: query_parameter(name, **spec) for name, spec in PARAMETERS.items()},
            "schemas": schemas,
            "responses": {code: {"description": text, "content": problem} for code, text in _ERRORS.items()},
        },
    }
