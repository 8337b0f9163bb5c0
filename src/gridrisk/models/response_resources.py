"""Vulnerable sites (承灾体), rescue teams (救援队伍), supply depots (物资储备库): requests, responses."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gridrisk.models.geojson import Feature, GeometryIn, VersionEntry, not_null
from gridrisk.vocabulary import (
    Capability,
    DepotLevel,
    SettableTeamStatus,
    SiteStatus,
    TeamType,
    VulnerableKind,
)

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
OptText = Annotated[str | None, Field(default=None, max_length=500)]
Phone = Annotated[str | None, Field(default=None, max_length=40, pattern=r"^[0-9+()\- ]{3,40}$")]
Persons = Annotated[int, Field(ge=0, le=1_000_000)]
DistrictCode = Annotated[
    str,
    Field(
        pattern=r"^\d{6}$", description="District code (e.g. 320104); derived from the geometry if not given"
    ),
]
Items = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]],
    Field(max_length=100, description="Equipment, e.g. 冲锋舟, 排涝泵车, 生命探测仪"),
]


class VulnerableSiteCreate(BaseModel):
    """A new vulnerable site: a place whose people or structure a hazard exposes."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Text200
    kind: VulnerableKind
    geometry: GeometryIn
    persons: Persons = Field(
        default=0, description="People usually present (pupils, residents, patients, ...)"
    )
    persons_assisted: Persons = Field(
        default=0, description="Of them, how many need help to move (children, the old, patients)"
    )
    contact_person: OptText = None
    contact_phone: Phone = None
    responsible_unit: OptText = None
    address: OptText = None
    district_code: DistrictCode | None = None
    status: SiteStatus = "active"


class VulnerableSiteUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: Text200 | None = None
    kind: VulnerableKind | None = None
    geometry: GeometryIn | None = None
    persons: Persons | None = None
    persons_assisted: Persons | None = None
    contact_person: OptText = None
    contact_phone: Phone = None
    responsible_unit: OptText = None
    address: OptText = None
    district_code: DistrictCode | None = None
    status: SiteStatus | None = None

    _not_null = not_null("name", "kind", "geometry", "persons", "persons_assisted", "status")


def persons_errors(persons: int | None, assisted: int | None) -> list[dict[str, str]]:
    """The people who need help to move are some of the people there."""
    if persons is not None and assisted is not None and assisted > persons:
        return [
            {
                "field": "persons_assisted",
                "message": f"{assisted} people needing help is more than the {persons} people there",
            }
        ]
    return []


class VulnerableSitePublic(Feature):
    """A vulnerable site as a GeoJSON Feature."""


class RescueTeamCreate(BaseModel):
    """A new rescue team: what it can do, how many, from where."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Text200
    team_type: TeamType = Field(
        description="fire_station (国家综合性消防救援站), fire_brigade (政府专职消防队), professional "
        "(专业救援队), social (社会救援力量) or militia (民兵应急分队)"
    )
    sector: Text200 = Field(
        description="The sector it serves, e.g. 防汛抗旱, 危险化学品, 电力, 燃气, 轨道交通"
    )
    capabilities: list[Capability] = Field(min_length=1, max_length=20, description="What it can do")
    members: Persons = 0
    equipment: Items = Field(default_factory=list)
    geometry: GeometryIn = Field(description="Its base: where it sets out from")
    status: SettableTeamStatus = Field(
        default="available", description="available, off_duty or closed; `deployed` follows its bookings"
    )
    contact_person: OptText = None
    contact_phone: Phone = None
    managing_unit: OptText = None
    address: OptText = None
    district_code: DistrictCode | None = None

    @field_validator("capabilities")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class RescueTeamUpdate(BaseModel):
    """Only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    name: Text200 | None = None
    team_type: TeamType | None = None
    sector: Text200 | None = None
    capabilities: list[Capability] | None = Field(default=None, min_length=1, max_length=20)
    members: Persons | None = None
    equipment: Items | None = None
    geometry: GeometryIn | None = None
    status: SettableTeamStatus | None = None
    contact_person: OptText = None
    contact_phone: Phone = None
    managing_unit: OptText = None
    address: OptText = None
    district_code: DistrictCode | None = None

    _not_null = not_null(
        "name", "team_type", "sector", "capabilities", "members", "equipment", "geometry", "status"
    )

    @field_validator("capabilities")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))


class RescueTeamPublic(Feature):
    """A rescue team as a GeoJSON Feature."""


ItemKey = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z][a-z0-9_]*$")]
Quantity = Annotated[int, Field(ge=0, le=100_000_000)]
Stock = Annotated[
    dict[ItemKey, Quantity],
    Field(
        max_length=200,
        description="What it holds, {item: quantity} in the catalogue's units (GET /supply-items), "
        'e.g. {"tents": 500, "sandbags": 20000}',
    ),
]


class SupplyDepotCreate(BaseModel):
    """A new supply depot with its stock."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Text200
    level: DepotLevel = Field(description="city (市级), district (区级) or street (街道级)")
    geometry: GeometryIn
    area_m2: Annotated[float | None, Field(default=None, ge=0, le=1e7, allow_inf_nan=False)] = None
    stock: Stock = Field(default_factory=dict)
    contact_person: OptText = None
    contact_phone: Phone = None
    managing_unit: OptText = None
    address: OptText = None
    district_code: DistrictCode | None = None
    status: SiteStatus = "active"


class SupplyDepotUpdate(BaseModel):
    """Only the fields sent change; `stock` replaces the whole stock (an item left out holds none)."""

    model_config = ConfigDict(extra="forbid")

    name: Text200 | None = None
    level: DepotLevel | None = None
    geometry: GeometryIn | None = None
    area_m2: Annotated[float | None, Field(default=None, ge=0, le=1e7, allow_inf_nan=False)] = None
    stock: Stock | None = None
    contact_person: OptText = None
    contact_phone: Phone = None
    managing_unit: OptText = None
    address: OptText = None
    district_code: DistrictCode | None = None
    status: SiteStatus | None = None

    _not_null = not_null("name", "level", "geometry", "stock", "status")


class SupplyDepotPublic(Feature):
    """A supply depot as a GeoJSON Feature."""


class HistoryEntry(VersionEntry):
    """One version of a vulnerable site, rescue team or supply depot."""


class SupplyItem(BaseModel):
    item: str
    name: str = Field(description="Its name, e.g. 帐篷")
    unit: str = Field(description="Its unit, e.g. 顶")
