"""Targeted warnings (靶向预警): requests, responses, rules, and the parsed form JSON and CAP become."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from gridrisk.models.geojson import _positions
from gridrisk.vocabulary import HAZARD_TYPES as HAZARD_TYPES
from gridrisk.vocabulary import Action, HazardType, TargetType
from gridrisk.vocabulary import WarningStatus as WarningStatus

# Warning levels, weakest first (blue → red), as they escalate.
Level = Literal["blue", "yellow", "orange", "red"]

# What each action asks of the grid worker, for clients to show.
ACTION_TEXT = {
    "none": "no order at this level",
    "notify": "notify the people responsible for the target (通知)",
    "notify_patrol": "notify, and patrol the target (通知并巡查)",
    "patrol_prepare_evacuation": (
        "patrol the target and prepare to evacuate the people it threatens (巡查并做好转移准备)"
    ),
    "evacuate": "evacuate the people the target threatens to the named shelter (转移避险)",
}

# The issuer's identifier: CAP forbids spaces, commas and the XML-restricted < and &.
Identifier = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[^\s,<&]+$", description="The issuer's identifier")
]
DistrictCode = Annotated[str, Field(pattern=r"^\d{6}$")]
CellCode = Annotated[str, Field(min_length=1, max_length=64)]


class PolygonalGeometry(BaseModel):
    """A GeoJSON Polygon or MultiPolygon in WGS 84; validity is checked by PostGIS (ST_IsValidReason)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Polygon", "MultiPolygon"]
    coordinates: list[Any]

    @field_validator("coordinates")
    @classmethod
    def _ranges(cls, coords: list[Any]) -> list[Any]:
        for x, y in _positions(coords):
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                raise ValueError(f"position [{x}, {y}] is outside longitude -180..180 / latitude -90..90")
        return coords


class AreaIn(BaseModel):
    """The warning's area: exactly one of a geometry, district codes, or cells of one layer."""

    model_config = ConfigDict(extra="forbid")

    geometry: PolygonalGeometry | None = Field(default=None, description="GeoJSON Polygon or MultiPolygon")
    districts: list[DistrictCode] | None = Field(
        default=None, min_length=1, max_length=50, description="District codes, e.g. 320115 (江宁区)"
    )
    layer: str | None = Field(
        default=None, max_length=64, description="With `cells`: the layer they belong to"
    )
    cells: list[CellCode] | None = Field(default=None, min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _one(self) -> AreaIn:
        given = [k for k in ("geometry", "districts", "cells") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `geometry`, `districts`, or `layer` with `cells`")
        if (self.cells is None) != (self.layer is None):
            raise ValueError("`cells` and `layer` go together")
        return self


class WarningIn(BaseModel):
    """A meteorological warning as JSON; posting the same identifier again updates it."""

    model_config = ConfigDict(extra="forbid")

    identifier: Identifier
    sender: str | None = Field(default=None, max_length=200, description="The issuing office")
    sent: AwareDatetime | None = Field(
        default=None, description="When the issuer sent this version; an older one than stored is refused"
    )
    hazard_type: HazardType
    level: Level
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    headline: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=20_000)
    instruction: str | None = Field(default=None, max_length=20_000)
    area: AreaIn

    @model_validator(mode="after")
    def _window(self) -> WarningIn:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        return self


class CancelIn(BaseModel):
    """Why the warning ends early (lifted by the issuer, issued in error, ...)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, min_length=1, max_length=2000)


class RuleActions(BaseModel):
    """The action each warning level demands of one kind of target (`none`: no order at that level)."""

    model_config = ConfigDict(extra="forbid")

    blue: Action
    yellow: Action
    orange: Action
    red: Action


class RuleTarget(BaseModel):
    """One kind of target: a risk-source category or a hazard-point kind."""

    model_config = ConfigDict(extra="forbid")

    type: TargetType
    kind: str = Field(min_length=1, max_length=64, description="Risk-source category or hazard-point kind")
    actions: RuleActions


class HazardRules(BaseModel):
    """Every kind of target exposed to one hazard (replaces the hazard's rules)."""

    model_config = ConfigDict(extra="forbid")

    targets: list[RuleTarget] = Field(max_length=200)
    reason: str | None = Field(default=None, max_length=2000)


class DueTimes(BaseModel):
    """Minutes a worker has for an order, by the warning's level (1 minute to 7 days)."""

    model_config = ConfigDict(extra="forbid")

    red: int = Field(ge=1, le=10_080)
    orange: int = Field(ge=1, le=10_080)
    yellow: int = Field(ge=1, le=10_080)
    blue: int = Field(ge=1, le=10_080)
    reason: str | None = Field(default=None, max_length=2000)


class RulesOut(BaseModel):
    """The targeting rules: due times by level, the actions, and each hazard's exposed targets."""

    due_minutes: dict[str, int]
    actions: dict[str, str]
    hazards: dict[str, list[RuleTarget]]


class OrdersResult(BaseModel):
    """What one post did to the work orders."""

    created: int
    escalated: int
    reopened: int
    cancelled: int
    targets: int = Field(description="Targets in the area that the rules name")


class MatchingResult(BaseModel):
    """What one post booked for the live orders (what was booked before is kept, not counted again)."""

    teams_booked: int = 0
    persons_placed: int = Field(default=0, description="People given shelter places by this post")
    persons_without_place: int = Field(default=0, description="People of evacuations still without a place")
    supply_lines_reserved: int = 0


class PostResult(BaseModel):
    created: bool = Field(description="A new warning (201) rather than an update of a known one")
    applied: bool = Field(description="False when the message was superseded or changed nothing")
    note: str | None = None
    message: str = Field(description="The message identifier this post carried")
    changes: dict[str, list[Any]] = Field(description="Warning fields changed: field → [from, to]")
    orders: OrdersResult
    matching: MatchingResult = Field(default_factory=MatchingResult)
    seconds: float = Field(description="Time spent in the database transaction")


class WarningSummary(BaseModel):
    """A warning with its area and where its work orders stand."""

    model_config = ConfigDict(extra="allow")

    id: int
    identifier: str
    hazard_type: HazardType
    level: Level
    status: Literal["active", "cancelled"]
    expired: bool
    area: dict[str, Any]
    affected_cells: dict[str, Any]
    orders: dict[str, Any]
    targets_by_kind: dict[str, dict[str, int]]
    evacuation: dict[str, Any]
    result: PostResult | None = None


# ---------------------------------------------------------------------------------------------
# The parsed form: JSON and CAP input both become a WarningSpec before any database work.


@dataclass
class AreaSpec:
    """Where a warning applies, before the database resolves it to one MultiPolygon."""

    field: str  # the input field errors name, e.g. "area.geometry" or "info.area"
    spec: dict[str, Any]  # kept as warnings.area_spec
    polygons: list[str] = field(default_factory=list)  # GeoJSON texts (Polygon / MultiPolygon)
    districts: list[str] = field(default_factory=list)  # must all be known
    layer: str | None = None
    cells: list[str] = field(default_factory=list)
    geocodes: list[str] = field(default_factory=list)  # CAP geocodes: districts or the city, others ignored


@dataclass
class WarningSpec:
    """One warning message, whatever its format."""

    identifier: str
    msg_type: Literal["Alert", "Update", "Cancel"]
    source: Literal["json", "cap"]
    sent: datetime | None = None
    sender: str | None = None
    references: list[str] = field(default_factory=list)
    hazard_type: str | None = None
    level: str | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    headline: str | None = None
    description: str = ""
    instruction: str | None = None
    area: AreaSpec | None = None
    note: str | None = None  # e.g. CAP elements that were ignored


def spec_from_json(body: WarningIn) -> WarningSpec:
    """The WarningSpec of a JSON warning."""
    area = body.area
    if area.geometry is not None:
        spec = AreaSpec(
            field="area.geometry",
            spec={"geometry": area.geometry.type},
            polygons=[area.geometry.model_dump_json()],
        )
    elif area.districts is not None:
        codes = list(dict.fromkeys(area.districts))
        spec = AreaSpec(field="area.districts", spec={"districts": codes}, districts=codes)
    else:
        codes = list(dict.fromkeys(area.cells or []))
        spec = AreaSpec(
            field="area.cells",
            spec={"layer": area.layer, "cells": codes},
            layer=area.layer,
            cells=codes,
        )
    return WarningSpec(
        identifier=body.identifier,
        msg_type="Alert",
        source="json",
        sent=body.sent,
        sender=body.sender,
        hazard_type=body.hazard_type,
        level=body.level,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        headline=body.headline,
        description=body.description,
        instruction=body.instruction,
        area=spec,
    )
