"""GeoJSON geometry input: parsed, validated (type, ranges, validity) and normalised with shapely."""

from __future__ import annotations

from typing import Any, Literal

import shapely
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from shapely.geometry import shape


class GeometryIn(BaseModel):
    """A GeoJSON geometry in WGS 84 (RFC 7946): Point, Polygon or MultiPolygon."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point", "Polygon", "MultiPolygon"]
    coordinates: list[Any]

    @field_validator("coordinates")
    @classmethod
    def _ranges(cls, coords: list[Any]) -> list[Any]:
        for x, y in _positions(coords):
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise ValueError(f"position [{x}, {y}] is outside longitude -180..180 / latitude -90..90")
        return coords

    @model_validator(mode="after")
    def _valid(self) -> GeometryIn:
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


def _positions(coords: Any):
    """Every [x, y] position in a nested GeoJSON coordinates array."""
    if isinstance(coords, list) and coords and all(isinstance(c, int | float) for c in coords):
        if len(coords) < 2:
            raise ValueError("a position needs at least [lon, lat]")
        yield float(coords[0]), float(coords[1])
        return
    if not isinstance(coords, list):
        raise ValueError("coordinates must be nested arrays of numbers")
    for c in coords:
        yield from _positions(c)
