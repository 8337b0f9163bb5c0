"""Shelter (应急避难场所) requests and responses: registry fields, occupancy changes, nearest, coverage."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gridrisk.models.geojson import Feature, GeometryIn, VersionEntry, feature_collection, not_null
from gridrisk.vocabulary import RECEIVING as RECEIVING
from gridrisk.vocabulary import SettableShelterStatus as SettableStatus
from gridrisk.vocabulary import ShelterStatus as Status

MAX_DELTA = 100_000

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
ClassCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=32,
        description="Shelter class: emergency (紧急), fixed (固定) or central (中心), as configured",
    ),
]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
OptText = Annotated[str | None, Field(default=None, max_length=500)]
Area = Annotated[float, Field(ge=0, le=1e8, allow_inf_nan=False, description="m²")]
Capacity = Annotated[int, Field(ge=0, le=10_000_000, description="Persons")]
Facilities = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]],
    Field(max_length=50, description="Facilities on site, e.g. 应急供水, 应急厕所, 医疗救护"),
]
DistrictCode = Annotated[
    str,
    Field(
        pattern=r"^\d{6}$", description="District code (e.g. 320104); derived from the geometry if not given"
    ),
]

CAPACITY_DOC = (
    "Persons; defaults to floor(effective_area_m2 ÷ the class's m² per person) when not given "
    "(SPEC: emergency 1 m², fixed 2 m², central 4.5 m², configurable)"
)


class ShelterCreate(BaseModel):
    """A new shelter; `capacity` may be left out when `effective_area_m2` is given."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    code: Code
    name: Text200
    shelter_class: ClassCode = Field(alias="class")
    geometry: GeometryIn
    total_area_m2: Area | None = None
    effective_area_m2: Area | None = Field(default=None, description="Usable area for people, m²")
    capacity: Capacity | None = Field(default=None, description=CAPACITY_DOC)
    status: SettableStatus = Field(
        default="standby", description="standby (ready, not receiving), open, or closed (out of service)"
    )
    facilities: Facilities = Field(default_factory=list)
    address: OptText = None
    district_code: DistrictCode | None = None
    managing_unit: OptText = None


_NOT_NULL = ("name", "shelter_class", "geometry", "status", "facilities")


class ShelterUpdate(BaseModel):
    """Only the fields sent change. `capacity: null` derives it from the effective area again;
    `district_code: null` derives it from the geometry again."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: Text200 | None = None
    shelter_class: ClassCode | None = Field(default=None, alias="class")
    geometry: GeometryIn | None = None
    total_area_m2: Area | None = None
    effective_area_m2: Area | None = None
    capacity: Capacity | None = Field(default=None, description=CAPACITY_DOC)
    status: SettableStatus | None = Field(
        default=None,
        description="standby, open or closed; an open shelter with no free place reads `full`. "
        "Standby and closed need the shelter empty.",
    )
    facilities: Facilities | None = None
    address: OptText = None
    district_code: DistrictCode | None = None
    managing_unit: OptText = None

    _not_null = not_null(*_NOT_NULL)


def figure_errors(total: float | None, effective: float | None, capacity: int | None) -> list[dict[str, str]]:
    """Cross-field checks of the area and capacity figures: [{field, message}], empty when fine."""
    errors = []
    if total is not None and effective is not None and effective > total:
        errors.append(
            {
                "field": "effective_area_m2",
                "message": f"the effective area ({effective:g} m²) exceeds the total area ({total:g} m²)",
            }
        )
    if capacity is None and effective is None:
        errors.append(
            {
                "field": "effective_area_m2",
                "message": "give the effective area (the capacity is derived from it) or the capacity",
            }
        )
    return errors


def default_capacity(effective_area_m2: float, m2_per_person: float) -> int:
    """floor(effective area ÷ m² per person); a hair of tolerance so 9.0 ÷ 4.5 is 2, not 1."""
    return math.floor(effective_area_m2 / m2_per_person + 1e-9)


class OccupancyChange(BaseModel):
    """People checked in (positive) or out (negative) at an open shelter."""

    model_config = ConfigDict(extra="forbid")

    delta: int = Field(
        ge=-MAX_DELTA,
        le=MAX_DELTA,
        description=f"Persons in (+) or out (−); not 0, at most {MAX_DELTA:,} either way",
    )
    order_id: int | None = Field(
        default=None,
        ge=1,
        description="The work order whose evacuees these are: checking them in uses up the places "
        "reserved for that order here (they count in the occupancy from then on, not twice)",
    )

    @field_validator("delta")
    @classmethod
    def _nonzero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must not be 0: send the persons checked in (+n) or out (−n)")
        return value


class NearestQuery(BaseModel):
    """GET /shelters/nearest's query: the point, how many, and which shelters count."""

    lon: float = Field(ge=-180, le=180, description="Longitude, WGS 84", examples=[118.7969])
    lat: float = Field(ge=-90, le=90, description="Latitude, WGS 84", examples=[32.0603])
    limit: int = Field(default=5, ge=1, le=100, description="How many shelters")
    shelter_class: str | None = Field(
        default=None, alias="class", max_length=32, description="Only this class"
    )
    status: list[Status] | None = Field(
        default=None, description="Statuses to include (default open and standby)"
    )
    min_free: int = Field(default=0, ge=0, le=10_000_000, description="At least this many free places")


class OccupancyState(BaseModel):
    """A shelter's live occupancy after a change (not a new version: the ETag stays)."""

    id: int
    code: str
    occupancy: int
    capacity: int
    free: int
    status: Status
    version: int
    reservation_used: int = Field(
        default=0, description="Of the people checked in, those the order's reservation held"
    )
    reserved: int = Field(default=0, description="Places still held here for evacuees on their way")


class HistoryEntry(VersionEntry):
    """One version of a shelter (check-ins are not versions)."""


class ShelterPublic(Feature):
    """A shelter as a GeoJSON Feature."""


ShelterCollection = feature_collection(ShelterPublic)


class ClassCapacity(BaseModel):
    capacity: float
    ratio: float | None


class CoverageSummary(BaseModel):
    """Coverage totals for the city (code null) or one district."""

    code: str | None
    name: str | None
    population: int
    capacity: float = Field(description="Sum of the cells' capacity shares, persons")
    ratio: float | None = Field(description="capacity ÷ population; null without population")
    shortfall: float = Field(description="Sum of the cells' shortfalls, persons")
    cells: int
    cells_with_shortfall: int
    cells_unreached: int = Field(description="Cells no shelter reaches")
    population_unreached: int
    by_class: dict[str, ClassCapacity] | None
    shelters_located: int = Field(description="Shelters (not closed) registered in this area")
    shelter_capacity_located: int
    shelters_closed: int
    idle_shelters: int = Field(description="Shelters (not closed) here that reach no populated cell")
    idle_capacity: int
    idle_shelter_codes: list[str]


class CoverageCell(BaseModel):
    code: str
    name: str
    district_code: str | None
    population: int
    capacity: float
    ratio: float | None
    shortfall: float
    by_class: dict[str, float] | None
    shelters: list[int] = Field(description="Ids of the shelters reaching the cell")


class CoverageReport(BaseModel):
    """City totals first, then districts, then the cells (largest shortfall first)."""

    layer: str
    generated_at: datetime
    rule: str
    classes: list[dict[str, Any]]
    city: CoverageSummary
    districts: list[CoverageSummary]
    cells: list[CoverageCell] | None
