"""OGC API – Features documents: pydantic models for the app's OpenAPI, and the OpenAPI 3.0 of /ogc.

FastAPI describes the whole service in OpenAPI 3.1 (/openapi.json); OGC clients (GDAL's OAPIF
driver, OWSLib, QGIS) want an OpenAPI **3.0** document that states each collection's items path and
query parameters, so `openapi_document()` builds one from the collection registry.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gridrisk import __version__
from gridrisk.api.geojson import GEOJSON
from gridrisk.ogc.collections import COLLECTIONS, CRS84, Collection

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
OPENAPI_30 = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10
MAX_OFFSET = 100_000_000
TRS = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"


# ---------------------------------------------------------------------------------------------
# Models (documentation of the JSON answers in the app's own OpenAPI)


class Link(BaseModel):
    model_config = ConfigDict(extra="allow")
    href: str
    rel: str
    type: str | None = None
    title: str | None = None


class LandingPage(BaseModel):
    model_config = ConfigDict(extra="allow")
    title: str
    description: str
    links: list[Link]


class Conformance(BaseModel):
    conformsTo: list[str]  # noqa: N815 (OGC's member name)


class SpatialExtent(BaseModel):
    bbox: list[list[float]] = Field(description="[[minLon, minLat, maxLon, maxLat]] of the data")
    crs: str = CRS84


class TemporalExtent(BaseModel):
    interval: list[list[str | None]]
    trs: str = TRS


class Extent(BaseModel):
    spatial: SpatialExtent | None = None
    temporal: TemporalExtent | None = None


class CollectionInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    title: str
    description: str
    itemType: str = "feature"  # noqa: N815
    crs: list[str]
    extent: Extent | None = None
    links: list[Link]


class Collections(BaseModel):
    model_config = ConfigDict(extra="allow")
    links: list[Link]
    collections: list[CollectionInfo]


class FeatureCollection(BaseModel):
    """A page of items: GeoJSON FeatureCollection with OGC paging members."""

    model_config = ConfigDict(extra="allow")
    type: str = "FeatureCollection"
    numberMatched: int  # noqa: N815
    numberReturned: int  # noqa: N815
    timeStamp: str  # noqa: N815
    links: list[Link]
    features: list[dict[str, Any]]


class Feature(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "Feature"
    id: str | int
    geometry: dict[str, Any]
    properties: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# The OpenAPI 3.0 document of /ogc

_LINK = {
    "type": "object",
    "required": ["href", "rel"],
    "properties": {
        "href": {"type": "string"},
        "rel": {"type": "string"},
        "type": {"type": "string"},
        "title": {"type": "string"},
    },
}
_LINKS = {"type": "array", "items": {"$ref": "#/components/schemas/link"}}
_SCHEMAS: dict[str, Any] = {
    "link": _LINK,
    "landingPage": {
        "type": "object",
        "required": ["links"],
        "properties": {"title": {"type": "string"}, "description": {"type": "string"}, "links": _LINKS},
    },
    "confClasses": {
        "type": "object",
        "required": ["conformsTo"],
        "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
    },
    "extent": {
        "type": "object",
        "properties": {
            "spatial": {
                "type": "object",
                "properties": {
                    "bbox": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
                    },
                    "crs": {"type": "string", "enum": [CRS84], "default": CRS84},
                },
            },
            "temporal": {
                "type": "object",
                "properties": {
                    "interval": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "array",
                            "minItems": 2,
                            "maxItems": 2,
                            "items": {"type": "string", "format": "date-time", "nullable": True},
                        },
                    },
                    "trs": {"type": "string"},
                },
            },
        },
    },
    "collection": {
        "type": "object",
        "required": ["id", "links"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "links": _LINKS,
            "extent": {"$ref": "#/components/schemas/extent"},
            "itemType": {"type": "string", "default": "feature"},
            "crs": {"type": "array", "items": {"type": "string"}, "default": [CRS84]},
        },
    },
    "collections": {
        "type": "object",
        "required": ["links", "collections"],
        "properties": {
            "links": _LINKS,
            "collections": {"type": "array", "items": {"$ref": "#/components/schemas/collection"}},
        },
    },
    "geometryGeoJSON": {
        "type": "object",
        "required": ["type", "coordinates"],
        "properties": {
            "type": {"type": "string", "enum": ["Point", "Polygon", "MultiPolygon"]},
            "coordinates": {"type": "array", "items": {}},
        },
    },
    "exception": {
        "type": "object",
        "description": "RFC 9457 problem details (application/problem+json)",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
        },
    },
}

_PARAMETERS: dict[str, Any] = {
    "f": {
        "name": "f",
        "in": "query",
        "required": False,
        "description": "Format of the answer; without it, the Accept header decides (JSON by default).",
        "schema": {"type": "string", "enum": ["json", "html"]},
        "style": "form",
        "explode": False,
    },
    "limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": f"How many items a page holds (1–{MAX_LIMIT:,}); follow the `next` link for more.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "style": "form",
        "explode": False,
    },
    "offset": {
        "name": "offset",
        "in": "query",
        "required": False,
        "description": "How many matching items to skip (items are ordered by feature id).",
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
        "style": "form",
        "explode": False,
    },
    "bbox": {
        "name": "bbox",
        "in": "query",
        "required": False,
        "description": "minLon,minLat,maxLon,maxLat (CRS84): items whose geometry intersects the box. "
        "Six numbers (with heights) are accepted; the heights are ignored.",
        "schema": {
            "type": "array",
            "minItems": 4,
            "maxItems": 6,
            "items": {"type": "number"},
        },
        "style": "form",
        "explode": False,
    },
    "bbox-crs": {
        "name": "bbox-crs",
        "in": "query",
        "required": False,
        "description": "The CRS of bbox; only CRS84 is served.",
        "schema": {"type": "string", "enum": [CRS84], "default": CRS84},
        "style": "form",
        "explode": False,
    },
    "crs": {
        "name": "crs",
        "in": "query",
        "required": False,
        "description": "The CRS of the answer; only CRS84 is served.",
        "schema": {"type": "string", "enum": [CRS84], "default": CRS84},
        "style": "form",
        "explode": False,
    },
    "datetime": {
        "name": "datetime",
        "in": "query",
        "required": False,
        "description": "An RFC 3339 instant or interval (`start/end`, `../end`, `start/..`) on the "
        "collection's temporal property; an instant without fractional seconds covers its whole second "
        "(a date, its whole day), interval ends are inclusive.",
        "schema": {"type": "string"},
        "style": "form",
        "explode": False,
    },
    "featureId": {
        "name": "featureId",
        "in": "path",
        "required": True,
        "description": "The feature id (a cell or district code, or a registry record's integer id).",
        "schema": {"type": "string"},
    },
    "collectionId": {
        "name": "collectionId",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "enum": list(COLLECTIONS)},
    },
}
_REF = {name: {"$ref": f"#/components/parameters/{name}"} for name in _PARAMETERS}


def _json_and_html(schema_ref: str, description: str, json_type: str = "application/json") -> dict:
    return {
        "200": {
            "description": description,
            "content": {
                json_type: {"schema": {"$ref": schema_ref}},
                "text/html": {"schema": {"type": "string"}},
            },
        },
        "400": {"$ref": "#/components/responses/400"},
        "500": {"$ref": "#/components/responses/500"},
    }


def _with_404(responses: dict) -> dict:
    return {**responses, "404": {"$ref": "#/components/responses/404"}}


def _filter_parameter(c: Collection, name: str) -> dict:
    p = c.prop(name)
    schema = {k: v for k, v in p.schema().items() if k in ("type", "format", "enum")}
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": f"Only items whose `{name}` equals this value ({p.description}).",
        "schema": schema,
        "style": "form",
        "explode": False,
    }


def _collection_paths(c: Collection) -> tuple[dict[str, Any], dict[str, Any]]:
    """The paths of one collection and the schemas they refer to."""
    props = {}
    for p in c.properties:
        s = p.schema()
        s["nullable"] = True
        props[p.name] = s
    feature = f"{c.id}_feature"
    schemas: dict[str, Any] = {}
    schemas[feature] = {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": c.id_type},
            "geometry": {"$ref": "#/components/schemas/geometryGeoJSON"},
            "properties": {"type": "object", "properties": props},
            "links": _LINKS,
        },
    }
    schemas[f"{c.id}_items"] = {
        "type": "object",
        "required": ["type", "features"],
        "properties": {
            "type": {"type": "string", "enum": ["FeatureCollection"]},
            "features": {"type": "array", "items": {"$ref": f"#/components/schemas/{feature}"}},
            "links": _LINKS,
            "timeStamp": {"type": "string", "format": "date-time"},
            "numberMatched": {"type": "integer", "minimum": 0},
            "numberReturned": {"type": "integer", "minimum": 0},
        },
    }
    base = f"/collections/{c.id}"
    items_params = [
        _REF["bbox"],
        _REF["bbox-crs"],
        _REF["limit"],
        _REF["offset"],
        _REF["datetime"],
        _REF["crs"],
        _REF["f"],
        *(_filter_parameter(c, p.name) for p in c.queryables),
    ]
    schema_response = {
        "200": {"description": "JSON Schema", "content": {SCHEMA_JSON: {"schema": {"type": "object"}}}},
        "404": {"$ref": "#/components/responses/404"},
    }
    paths = {
        base: {
            "get": {
                "tags": [c.id],
                "summary": f"{c.title}: description, extent and links",
                "operationId": f"describe_{c.id}",
                "parameters": [_REF["f"]],
                "responses": _json_and_html("#/components/schemas/collection", "The collection"),
            }
        },
        f"{base}/items": {
            "get": {
                "tags": [c.id],
                "summary": f"{c.title}: features, paged by feature id",
                "description": c.description
                + f" Filters: bbox, datetime (on `{c.temporal}`), and equality on "
                + ", ".join(f"`{p.name}`" for p in c.queryables)
                + ". Unknown query parameters are refused (400).",
                "operationId": f"get_{c.id}_items",
                "parameters": items_params,
                "responses": _with_404(
                    _json_and_html(f"#/components/schemas/{c.id}_items", "A page of features", GEOJSON)
                ),
            }
        },
        f"{base}/items/{{featureId}}": {
            "get": {
                "tags": [c.id],
                "summary": f"{c.title}: one feature",
                "operationId": f"get_{c.id}_item",
                "parameters": [_REF["featureId"], _REF["crs"], _REF["f"]],
                "responses": _with_404(
                    _json_and_html(f"#/components/schemas/{feature}", "The feature", GEOJSON)
                ),
            }
        },
        f"{base}/queryables": {
            "get": {
                "tags": [c.id],
                "summary": f"{c.title}: the properties `?name=value` filters on",
                "operationId": f"get_{c.id}_queryables",
                "parameters": [_REF["f"]],
                "responses": schema_response,
            }
        },
        f"{base}/schema": {
            "get": {
                "tags": [c.id],
                "summary": f"{c.title}: JSON Schema of the features",
                "operationId": f"get_{c.id}_schema",
                "parameters": [_REF["f"]],
                "responses": schema_response,
            }
        },
    }
    return paths, schemas


def openapi_document(base: str) -> dict[str, Any]:
    """The OpenAPI 3.0 description of /ogc, served at /ogc/api; BASE is the absolute URL of /ogc."""
    # Built once from the registry; only the server URL varies between requests.
    return {**_document(), "servers": [{"url": base}]}


@cache
def _document() -> dict[str, Any]:
    """The OpenAPI 3.0 document without its server URL (callers must not mutate it)."""
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "Landing page",
                "operationId": "getLandingPage",
                "parameters": [_REF["f"]],
                "responses": _json_and_html("#/components/schemas/landingPage", "Links to the API"),
            }
        },
        "/conformance": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "Conformance classes",
                "operationId": "getConformanceDeclaration",
                "parameters": [_REF["f"]],
                "responses": _json_and_html("#/components/schemas/confClasses", "Conformance classes"),
            }
        },
        "/api": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "This document (f=html: a browsable view)",
                "operationId": "getAPI",
                "parameters": [_REF["f"]],
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.0",
                        "content": {OPENAPI_30: {"schema": {"type": "object"}}, "text/html": {}},
                    }
                },
            }
        },
        "/collections": {
            "get": {
                "tags": ["Capabilities"],
                "summary": "The feature collections, with their extents",
                "operationId": "getCollections",
                "parameters": [_REF["f"]],
                "responses": _json_and_html("#/components/schemas/collections", "The collections"),
            }
        },
    }
    schemas = dict(_SCHEMAS)
    for c in COLLECTIONS.values():
        more_paths, more_schemas = _collection_paths(c)
        paths.update(more_paths)
        schemas.update(more_schemas)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/exception"}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gridrisk – OGC API – Features",
            "version": __version__,
            "description": "The city's grids with their four-colour risk map, districts, risk sources, "
            "shelters and hazard points as OGC API – Features (Part 1: Core, GeoJSON, HTML). "
            "Coordinates are WGS 84 longitude/latitude (CRS84).",
        },
        "servers": [],  # openapi_document() fills it in, in this place
        "tags": [
            {"name": "Capabilities"},
            *({"name": c.id, "description": c.title} for c in COLLECTIONS.values()),
        ],
        "paths": paths,
        "components": {
            "parameters": _PARAMETERS,
            "schemas": schemas,
            "responses": {
                "400": {"description": "A query parameter is malformed or unknown", "content": problem},
                "404": {"description": "No such collection or feature", "content": problem},
                "500": {"description": "Internal error", "content": problem},
            },
        },
    }
