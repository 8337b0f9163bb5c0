"""Risk source requests and responses: registry fields, assessment (LEC, LS or direct), overrides."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from gridrisk.models.geojson import Feature, GeometryIn, VersionEntry, not_null
from gridrisk.vocabulary import LEC_C as LEC_C
from gridrisk.vocabulary import LEC_E as LEC_E
from gridrisk.vocabulary import LEC_L as LEC_L
from gridrisk.vocabulary import Colour as Level
from gridrisk.vocabulary import SourceStatus as Status

_LEC_SETS = {"L": frozenset(LEC_L), "E": frozenset(LEC_E), "C": frozenset(LEC_C)}


class LecAssessment(BaseModel):
    """LEC: D = L × E × C."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["LEC"]
    L: float = Field(description=f"Likelihood, one of {LEC_L}", json_schema_extra={"enum": list(LEC_L)})
    E: float = Field(description=f"Exposure, one of {LEC_E}", json_schema_extra={"enum": list(LEC_E)})
    C: float = Field(description=f"Consequence, one of {LEC_C}", json_schema_extra={"enum": list(LEC_C)})

    @field_validator("L", "E", "C")
    @classmethod
    def _in_set(cls, value: float, info: ValidationInfo) -> float:
        if value in _LEC_SETS[info.field_name]:
            return value
        allowed = {"L": LEC_L, "E": LEC_E, "C": LEC_C}[info.field_name]
        raise ValueError(f"{info.field_name} must be one of {', '.join(map(str, allowed))}")


class LsAssessment(BaseModel):
    """Risk matrix: R = L × S, each an integer 1–5."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["LS"]
    L: int = Field(ge=1, le=5, description="Likelihood 1–5")
    S: int = Field(ge=1, le=5, description="Severity 1–5")


class DirectAssessment(BaseModel):
    """A level set directly by the supervising department, with the reason recorded."""

    model_config = ConfigDict(extra="forbid")
    method: Literal["direct"]
    level: Level
    reason: str = Field(min_length=1, max_length=2000)


Assessment = Annotated[LecAssessment | LsAssessment | DirectAssessment, Field(discriminator="method")]


class Override(BaseModel):
    """An operator's override of the computed level (kept beside it), with the reason."""

    model_config = ConfigDict(extra="forbid")
    level: Level
    reason: str = Field(min_length=1, max_length=2000)


Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Persons = Annotated[int, Field(ge=0, le=10_000_000)]
OptText = Annotated[str | None, Field(default=None, max_length=500)]


class RiskSourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
    name: Text200
    category: Annotated[str, Field(min_length=1, max_length=64)]
    geometry: GeometryIn
    assessment: Assessment
    override: Override | None = None
    address: OptText = None
    plate_code: Annotated[str | None, Field(default=None, min_length=1, max_length=64)] = None
    enterprise: OptText = None
    department: OptText = None
    persons: Persons = Field(
        default=0, description="People usually on site (staff, residents, visitors): whom an evacuation moves"
    )
    status: Status = "active"


class RiskSourceUpdate(BaseModel):
    """Only the fields sent change; `override: null` clears an override."""

    model_config = ConfigDict(extra="forbid")

    name: Text200 | None = None
    category: Annotated[str | None, Field(default=None, min_length=1, max_length=64)] = None
    geometry: GeometryIn | None = None
    assessment: Assessment | None = None
    override: Override | None = None
    address: OptText = None
    plate_code: Annotated[str | None, Field(default=None, min_length=1, max_length=64)] = None
    enterprise: OptText = None
    department: OptText = None
    persons: Persons | None = None
    status: Status | None = None

    _not_null = not_null("persons")


class HistoryEntry(VersionEntry):
    """One version of a risk source."""


class RiskSourcePublic(Feature):
    """A risk source as a GeoJSON Feature."""
