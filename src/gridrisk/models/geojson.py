"""GeoJSON geometry input (parsed, validated: type, ranges, validity) and the registries' Feature models."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Literal

import shapely
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from shapely.geometry import shape


class GeometryIn(BaseModel):
    """A GeoJSON geometry in WGS 84 (RFC 7946): Point, Polygon or MultiPolygon."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point", "Polygon", "MultiPolygon"]
    coordinates: list[Any]

    @field_validator("coordinates")
    @classmethod
    def _ranges(cls, coords: list[Any]) -> list[Any]:
        if _is_position(coords) and -180 <= coords[0] <= 180 and -90 <= coords[1] <= 90:
            return coords  # one position in range: the common case, checked without the walk below
        for x, y in _positions(coords):
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise ValueError(f"position [{x}, {y}] is outside longitude -180..180 / latitude -90..90")
        return coords

    @model_validator(mode="after")
    def _valid(self) -> GeometryIn:
        if self.type == "Point" and _is_position(self.coordinates):
            return self  # numbers in range (checked above): a point is always valid, never empty
        # Nesting as RFC 7946 has it: shapely reads a Point of [[x, y]] too, PostGIS does not.
        if not _nested(self.coordinates, _DEPTH[self.type]):
            raise ValueError(
                f"malformed {self.type} coordinates: expected "
                + {"Point": "[lon, lat]", "Polygon": "rings of [lon, lat] positions"}.get(
                    self.type, "polygons of rings of [lon, lat] positions"
                )
            )
        try:
            geom = shape(self.model_dump())
        except Exception as exc:  # shapely raises several types for malformed nesting
            raise ValueError(f"malformed {self.type} coordinates: {exc}") from exc
        if geom.is_empty:
            raise ValueError("the geometry is empty")
        if not geom.is_valid:
            raise ValueError(f"the geometry is invalid: {shapely.is_valid_reason(geom)}")
        return self

    def to_json(self) -> str:
        return self.model_dump_json()


_NUMBER = (int, float)


def _is_position(coords: list[Any]) -> bool:
    """[x, y] or [x, y, z] of plain numbers (finite or not)."""
    n = len(coords)
    return (
        (n == 2 or (n == 3 and coords[2].__class__ in _NUMBER))
        and coords[0].__class__ in _NUMBER
        and coords[1].__class__ in _NUMBER
    )


_DEPTH = {"Point": 0, "Polygon": 2, "MultiPolygon": 3}


def _nested(coords: Any, depth: int) -> bool:
    """Whether COORDS are arrays nested DEPTH deep down to positions of plain numbers."""
    if depth == 0:
        return isinstance(coords, list) and _is_position(coords)
    return isinstance(coords, list) and all(_nested(c, depth - 1) for c in coords)


def _positions(coords: Any):
    """Every [x, y] position in a nested GeoJSON coordinates array."""
    if isinstance(coords, list) and coords and all(c.__class__ in _NUMBER for c in coords):
        if len(coords) < 2:
            raise ValueError("a position needs at least [lon, lat]")
        yield float(coords[0]), float(coords[1])
        return
    if not isinstance(coords, list):
        raise ValueError("coordinates must be nested arrays of numbers")
    for c in coords:
        yield from _positions(c)


class Feature(BaseModel):
    """A registry's feature as a GeoJSON Feature (the properties are the kind's)."""

    type: Literal["Feature"]
    id: int
    geometry: dict[str, Any]
    properties: dict[str, Any]


class VersionEntry(BaseModel):
    """One version of a registry's feature."""

    version: int
    at: datetime
    by: str
    op: Literal["create", "update", "close"]
    changes: dict[str, list[Any]] = Field(description="field → [from, to]")


@cache
def feature_collection(feature: type[Feature]) -> type[BaseModel]:
    """The FeatureCollection model of a kind's Feature model (one class each: OpenAPI names it once)."""
    return create_model(
        feature.__name__.removesuffix("Public") + "Collection",
        __config__=ConfigDict(extra="allow"),
        __doc__=f"{feature.__doc__.split(' as ')[0]}s as a GeoJSON FeatureCollection.",
        type=(Literal["FeatureCollection"], ...),
        features=(list[feature], ...),
    )


def not_null(*fields: str):
    """A PATCH model's validator: FIELDS, when sent, cannot be null (leave one out to keep its value)."""

    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("cannot be null; leave the field out to keep its value")
        return value

    return field_validator(*fields)(classmethod(_not_null))
