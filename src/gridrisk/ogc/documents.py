"""The JSON documents of /ogc: links between the resources, collection descriptions, pages of items.

An items page is written as bytes around the features PostgreSQL has already built (one statement,
see db/sql/ogc_items.sql): Python adds the envelope and the links, whatever the number of features.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request

from gridrisk.api.geojson import GEOJSON
from gridrisk.ogc.collections import Collection
from gridrisk.ogc.crs import CRS84
from gridrisk.ogc.models import OPENAPI_30, SCHEMA_JSON, TRS

JSON = "application/json"
HTML = "text/html"


def base_url(request: Request) -> str:
    """The absolute URL of /ogc."""
    return str(request.base_url).rstrip("/") + "/ogc"


def with_params(request: Request, **params: Any) -> str:
    """This request's URL with PARAMS set."""
    return str(request.url.include_query_params(**params))


def self_links(request: Request, html: bool, json_type: str = JSON) -> list[dict]:
    """self and alternate: this resource in the format served and in the other one."""
    if html:
        return [
            {"rel": "self", "type": HTML, "title": "This document", "href": str(request.url)},
            {
                "rel": "alternate",
                "type": json_type,
                "title": "As JSON",
                "href": with_params(request, f="json"),
            },
        ]
    return [
        {"rel": "self", "type": json_type, "title": "This document", "href": str(request.url)},
        {"rel": "alternate", "type": HTML, "title": "As HTML", "href": with_params(request, f="html")},
    ]


def _link(rel: str, type_: str, title: str, href: str) -> dict:
    return {"rel": rel, "type": type_, "title": title, "href": href}


def landing_links(request: Request, html: bool) -> list[dict]:
    base = base_url(request)
    return [
        *self_links(request, html),
        _link("service-desc", OPENAPI_30, "The API (OpenAPI 3.0)", f"{base}/api"),
        _link("service-doc", HTML, "The API, browsable", f"{base}/api?f=html"),
        _link("conformance", JSON, "Conformance classes", f"{base}/conformance"),
        _link("data", JSON, "The collections", f"{base}/collections"),
    ]


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def collection_body(c: Collection, extent: dict | None, base: str, crs: list[str]) -> dict:
    """A collection's description: id, titles, the CRSs it answers in, its data's extent and links."""
    url = f"{base}/collections/{c.id}"
    body: dict[str, Any] = {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "keywords": list(c.keywords),
        "itemType": "feature",
        "crs": crs,
        "storageCrs": CRS84,
    }
    if extent is not None and extent["minx"] is not None:
        body["extent"] = {
            "spatial": {
                "bbox": [[extent["minx"], extent["miny"], extent["maxx"], extent["maxy"]]],
                "crs": CRS84,
            },
            "temporal": {"interval": [[_iso(extent["tmin"]), _iso(extent["tmax"])]], "trs": TRS},
        }
    body["links"] = [
        _link("self", JSON, c.title, url),
        _link("alternate", HTML, f"{c.title} (HTML)", f"{url}?f=html"),
        _link("items", GEOJSON, "The features (GeoJSON)", f"{url}/items"),
        _link("items", HTML, "The features (HTML)", f"{url}/items?f=html"),
        _link("describedby", SCHEMA_JSON, "Feature schema", f"{url}/schema"),
        _link("queryables", SCHEMA_JSON, "Queryables", f"{url}/queryables"),
        _link("collection", JSON, "All collections", f"{base}/collections"),
    ]
    return body


def _up(request: Request, c: Collection) -> dict:
    return _link("collection", JSON, c.title, f"{base_url(request)}/collections/{c.id}")


def items_links(
    request: Request, c: Collection, html: bool, *, limit: int, offset: int, returned: int, matched: int
) -> list[dict]:
    """self, alternate, next (only when more remain), prev and collection."""
    page_type = HTML if html else GEOJSON
    links = self_links(request, html, GEOJSON)
    if offset + returned < matched:
        links.append(
            _link("next", page_type, "Next page", with_params(request, offset=offset + limit, limit=limit))
        )
    if offset > 0:
        prev = max(0, offset - limit)
        links.append(
            _link("prev", page_type, "Previous page", with_params(request, offset=prev, limit=limit))
        )
    links.append(_up(request, c))
    return links


def item_links(request: Request, c: Collection, html: bool) -> list[dict]:
    return [*self_links(request, html, GEOJSON), _up(request, c)]


def items_page(features: bytes, links: list[dict], *, matched: int, returned: int) -> bytes:
    """The GeoJSON FeatureCollection of a page: FEATURES are the page's features joined by commas."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    head = b'{"type":"FeatureCollection","numberMatched":%d,"numberReturned":%d,"timeStamp":"%s","links":' % (
        matched,
        returned,
        stamp.encode(),
    )
    return head + orjson.dumps(links) + b',"features":[' + features + b"]}"


def item_page(feature: str, links: list[dict]) -> bytes:
    """One GeoJSON Feature with its links (the feature text ends with its closing brace)."""
    return feature.encode()[:-1] + b',"links":' + orjson.dumps(links) + b"}"


# ---------------------------------------------------------------------------------------------
# JSON Schemas of a collection


def _json_schema(schema_id: str | None, **members: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **members}
    if schema_id:
        out["$id"] = schema_id
    return out


def feature_schema(c: Collection, schema_id: str | None = None) -> dict[str, Any]:
    """JSON Schema of the collection's GeoJSON Features (GDAL's OAPIF driver types fields from it)."""
    return _json_schema(
        schema_id,
        title=c.title,
        type="object",
        required=["type", "geometry", "properties"],
        properties={
            "type": {"type": "string", "enum": ["Feature"]},
            "id": {"type": c.id_type, "description": "The feature id"},
            "geometry": {
                "type": "object",
                "description": f"GeoJSON {' or '.join(c.geometry_types)}, WGS 84 lon/lat",
                "x-ogc-role": "primary-geometry",
            },
            "properties": {"type": "object", "properties": {p.name: p.schema() for p in c.properties}},
        },
    )


def queryables_schema(c: Collection, schema_id: str | None = None) -> dict[str, Any]:
    """The queryables (OGC API – Features Part 3): what a CQL2 `filter` may name, the geometry included.

    The properties with `?name=value` equality filters are among them (all but the temporal one).
    """
    geometry = {"format": "geometry-any", "title": "geometry", "x-ogc-role": "primary-geometry"}
    return _json_schema(
        schema_id,
        type="object",
        title=c.title,
        properties={"geometry": geometry, **{name: p.schema() for name, p in c.filterable.items()}},
        additionalProperties=False,
    )
