"""GeoJSON responses assembled from JSON the database already built (no re-parsing in Python)."""

from __future__ import annotations

import orjson
from fastapi import Request
from starlette.responses import Response

GEOJSON = "application/geo+json"


def page_links(
    request: Request, *, offset: int, limit: int, returned: int, matched: int, media_type: str = GEOJSON
) -> list[dict]:
    """self/next/prev links for offset paging, keeping every other query parameter."""
    links = [{"rel": "self", "type": media_type, "href": str(request.url)}]
    if offset + returned < matched:
        nxt = request.url.include_query_params(offset=offset + limit, limit=limit)
        links.append({"rel": "next", "type": media_type, "href": str(nxt)})
    if offset > 0:
        prev = request.url.include_query_params(offset=max(0, offset - limit), limit=limit)
        links.append({"rel": "prev", "type": media_type, "href": str(prev)})
    return links


def feature_collection(features_json: str, *, extra: bytes = b"") -> Response:
    """Wrap a JSON array of features (text from the database) as a FeatureCollection response."""
    body = b'{"type":"FeatureCollection",' + extra + b'"features":' + features_json.encode() + b"}"
    return Response(body, media_type=GEOJSON)


def raw_json(body: str | bytes, *, media_type: str = GEOJSON, headers: dict | None = None) -> Response:
    """A response whose JSON body the database produced."""
    return Response(
        body if isinstance(body, bytes) else body.encode(), media_type=media_type, headers=headers
    )


def paged_collection(
    request: Request, *, offset: int, limit: int, matched: int, features: list[str]
) -> Response:
    """One page of features (JSON texts) as a FeatureCollection with numberMatched/Returned and links."""
    returned = len(features)
    links = page_links(request, offset=offset, limit=limit, returned=returned, matched=matched)
    extra = (
        b'"numberMatched":%d,"numberReturned":%d,"links":' % (matched, returned) + orjson.dumps(links) + b","
    )
    return feature_collection("[" + ",".join(features) + "]", extra=extra)
