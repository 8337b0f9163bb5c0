"""Models of the four-colour map: a cell's colour, pins, thresholds and summaries."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridrisk.vocabulary import Colour


class CellRiskPublic(BaseModel):
    layer: str
    code: str
    name: str
    district_code: str | None
    colour: Colour = Field(description="What the map shows: the pinned colour if pinned, else computed")
    computed_colour: Colour
    pinned_colour: Colour | None
    pin_reason: str | None
    pinned_by: str | None
    pinned_at: datetime | None
    score: float
    changed_at: datetime
    counts: dict[str, int]


class PinCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    colour: Colour
    reason: str = Field(min_length=1, max_length=2000)


class Unpin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class Threshold(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_score: float = Field(gt=0, description="The score the level starts at")
    min_inclusive: bool = Field(description="True: a score equal to min_score reaches the level")


class ThresholdsUpdate(BaseModel):
    """New thresholds of one method; red must start above orange, orange above yellow."""

    model_config = ConfigDict(extra="forbid")
    red: Threshold
    orange: Threshold
    yellow: Threshold
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdsUpdate:
        if not (self.red.min_score > self.orange.min_score > self.yellow.min_score):
            raise ValueError("thresholds must rise: red.min_score > orange.min_score > yellow.min_score")
        return self


class ThresholdsPublic(BaseModel):
    method: Literal["LEC", "LS"]
    red: Threshold
    orange: Threshold
    yellow: Threshold
    updated_at: datetime
    updated_by: str


class ColourCounts(BaseModel):
    red: int
    orange: int
    yellow: int
    blue: int
    total: int


class DistrictCounts(ColourCounts):
    code: str | None
    name: str | None


class RiskMapSummary(BaseModel):
    layer: str
    as_of: datetime | None
    city: ColourCounts
    districts: list[DistrictCounts]
