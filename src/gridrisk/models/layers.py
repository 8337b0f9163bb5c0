"""Models of layers, cells, overlaps and the "which cell am I in" answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, model_validator


class LayerPublic(BaseModel):
    name: str
    kind: str = Field(description="grid or admin")
    title: str
    description: str
    version: int = Field(description="Bumped on every import")
    imported_at: datetime | None
    source: str | None
    cell_count: int
    area_m2: float
    population: int
    bbox: list[float] | None = Field(description="minLon,minLat,maxLon,maxLat")
    gap_area_m2: float | None = Field(description="City area not covered by the layer, at import")
    overlap_area_m2: float | None = Field(description="Area covered twice within the layer, at import")
    gap_area_crs: str | None = Field(
        default=None,
        description="The metric CRS those two areas were measured in (the city's at import; a later change "
        "of the city's CRS re-measures the cells, not these figures of the imported file)",
    )


class CityPublic(BaseModel):
    """The city this service covers: for a map's title and starting view, and how areas are measured."""

    name: str = Field(description="The city's name, e.g. 南京市")
    name_en: str | None
    metric_crs: str = Field(description="The projected CRS every area_m2 is measured in, e.g. EPSG:4549")
    metric_crs_auto: bool = Field(description="True: the CGCS2000 3° zone nearest the city, chosen for it")
    districts: int
    bbox: list[float] | None = Field(description="minLon,minLat,maxLon,maxLat of the city (WGS 84)")
    centre: list[float] | None = Field(description="[lon, lat], the middle of the bbox")


class OverlapPublic(BaseModel):
    layer: str
    code: str
    name: str
    area_m2: float
    share: float = Field(description="Share of THIS cell covered by the other cell")
    other_share: float = Field(description="Share of the OTHER cell covered by this cell")


class Worker(BaseModel):
    name: str
    phone: str | None


class CellAtCell(BaseModel):
    code: str
    name: str
    district_code: str | None
    street_code: str | None
    community_code: str | None
    population: int
    colour: str = Field(description="Four-colour map colour of the cell: red, orange, yellow or blue")
    computed_colour: str
    score: float
    counts: dict[str, int] = Field(description="Risk items in the cell by level")
    workers: list[Worker]


class CellsAtPublic(BaseModel):
    lon: float
    lat: float
    inside_city: bool
    cells: dict[str, CellAtCell | None] = Field(description="Grid layer → containing cell")
    admin: dict[str, CellAtCell | None] = Field(description="Administrative layer → containing unit")


class CellsAtBatch(BaseModel):
    """Up to 10,000 points: a GeoJSON MultiPoint, or {"points": [[lon, lat], ...]}."""

    type: str | None = Field(default=None, description="'MultiPoint' when sending GeoJSON")
    coordinates: list[list[float]] | None = None
    points: list[list[float]] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> CellsAtBatch:
        if self.coordinates is None and self.points is None:
            raise ValueError("send a GeoJSON MultiPoint (coordinates) or a list of [lon, lat] (points)")
        if self.coordinates is not None and self.type != "MultiPoint":
            raise ValueError("a GeoJSON body must have type 'MultiPoint'")
        return self

    def lonlats(self) -> list[list[float]]:
        return self.coordinates if self.coordinates is not None else (self.points or [])


class CellsAtBatchPublic(BaseModel):
    count: int
    results: list[CellsAtPublic]


def split_layers(cells: dict[str, Any], grid_layers: tuple[str, ...], admin_layers: tuple[str, ...]):
    """Split {layer: cell} into (grid cells, admin units), each listing every layer (None if none)."""
    return (
        {name: cells.get(name) for name in grid_layers},
        {name: cells.get(name) for name in admin_layers},
    )
