"""OGC API – Features documents: the constants of the standard and the shapes of the JSON answers.

The pydantic models describe the answers in the app's OpenAPI (3.1, /openapi.json), and
`ogc/openapi.py` turns the same models into the schemas of the OpenAPI 3.0 document at /ogc/api.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridrisk.ogc.cql2_filter import CONFORMANCE as CQL2_CONFORMANCE
from gridrisk.ogc.crs import CRS84

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    *CQL2_CONFORMANCE,
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
    bbox: list[Annotated[list[float], Field(min_length=4, max_length=6)]] = Field(
        min_length=1, description="[[minLon, minLat, maxLon, maxLat]] of the data"
    )
    crs: str = CRS84


class TemporalExtent(BaseModel):
    interval: list[Annotated[list[datetime | None], Field(min_length=2, max_length=2)]] = Field(
        min_length=1, description="[[first, last]] value of the collection's temporal property"
    )
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
    type: Literal["FeatureCollection"]
    numberMatched: int = Field(ge=0)  # noqa: N815
    numberReturned: int = Field(ge=0)  # noqa: N815
    timeStamp: datetime  # noqa: N815
    links: list[Link]
    features: list[dict[str, Any]]


class Feature(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["Feature"]
    id: str | int
    geometry: dict[str, Any]
    properties: dict[str, Any]
