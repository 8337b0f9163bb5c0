"""Hazard point (隐患点) requests and responses, and the lifecycle's transition table."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridrisk.models.geojson import Feature, GeometryIn, VersionEntry, not_null
from gridrisk.vocabulary import LEVELS as LEVELS
from gridrisk.vocabulary import Colour as Level
from gridrisk.vocabulary import HazardKind as Kind
from gridrisk.vocabulary import HazardStatus as Status

# The lifecycle. Forward: identified → monitoring → remediating → remediated; works may also start
# straight from identified, and a stalled remediation falls back to monitoring. `closed` (written
# off, or registered by mistake) is reachable from every state. Reopening is explicit and needs a
# note: a remediated point whose hazard recurs, or a closed one, goes back to `identified` to be
# assessed afresh. Everything else is a 409 naming the allowed next states.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "identified": ("monitoring", "remediating", "closed"),
    "monitoring": ("remediating", "closed"),
    "remediating": ("remediated", "monitoring", "closed"),
    "remediated": ("identified", "closed"),
    "closed": ("identified",),
}
REOPEN_FROM = ("remediated", "closed")

PROPERTY_VALUE_DOC = "Property under threat, in 10,000 yuan (万元)"

Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
OptText = Annotated[str | None, Field(default=None, max_length=500)]
Notes = Annotated[str | None, Field(default=None, max_length=4000)]
Persons = Annotated[int, Field(ge=0, le=10_000_000, description="People under threat")]
Value = Annotated[float, Field(ge=0, le=1e9, allow_inf_nan=False, description=PROPERTY_VALUE_DOC)]
DistrictCode = Annotated[
    str,
    Field(
        pattern=r"^\d{6}$",
        description="District code (e.g. 320104); derived from the geometry when not given",
    ),
]


class HazardPointCreate(BaseModel):
    """A new hazard point; `status` is its initial state (register an existing one as it stands)."""

    model_config = ConfigDict(extra="forbid")

    code: Code
    name: Text200
    kind: Kind
    geometry: GeometryIn
    level: Level = Field(description="Assessed level; red/orange/yellow colour the cells while unremediated")
    threatened_persons: Persons = 0
    property_value: Value = 0
    status: Literal["identified", "monitoring", "remediating", "remediated"] = "identified"
    responsible_person: OptText = None
    responsible_unit: OptText = None
    notes: Notes = None
    address: OptText = None
    district_code: DistrictCode | None = None


_NOT_NULL = ("name", "kind", "geometry", "level", "threatened_persons", "property_value")


class HazardPointUpdate(BaseModel):
    """Only the fields sent change; `district_code: null` derives it from the geometry again.

    The status is not patched: it moves through POST /hazard-points/{id}/transitions.
    """

    model_config = ConfigDict(extra="forbid")

    name: Text200 | None = None
    kind: Kind | None = None
    geometry: GeometryIn | None = None
    level: Level | None = None
    threatened_persons: Persons | None = None
    property_value: Value | None = None
    responsible_person: OptText = None
    responsible_unit: OptText = None
    notes: Notes = None
    address: OptText = None
    district_code: DistrictCode | None = None
    status: Status | None = Field(
        default=None, description="Not accepted here: use POST /hazard-points/{id}/transitions"
    )

    _not_null = not_null(*_NOT_NULL)


class Transition(BaseModel):
    """Move a hazard point to another status; the date is stamped and the note kept in its history."""

    model_config = ConfigDict(extra="forbid")

    to: Status
    note: Annotated[
        str | None, Field(default=None, min_length=1, max_length=2000, description="Required to reopen")
    ] = None
    by: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=200,
            description="Who carried it out on the ground (the API key's holder is recorded anyway)",
        ),
    ] = None


class TransitionDone(BaseModel):
    """A status change as recorded in the history."""

    model_config = ConfigDict(populate_by_name=True)

    from_: Status | None = Field(alias="from")
    to: Status
    note: str | None = None
    by: str | None = None


class HistoryEntry(VersionEntry):
    """One version of a hazard point; a status change carries its transition."""

    by: str = Field(description="The API key holder who wrote this version")
    op: Literal["create", "update", "transition", "close"]
    transition: TransitionDone | None = Field(
        default=None, description="For a status change: from, to, the note and who carried it out"
    )


class HazardPointPublic(Feature):
    """A hazard point as a GeoJSON Feature."""


class Breakdown(BaseModel):
    """Counts and remediation rate for one scope (the city, or one district)."""

    code: str | None = Field(description="District code; null for the city, or for points in no district")
    name: str | None
    total: int = Field(description="Every registered hazard point, closed ones included")
    open: int = Field(description="Not remediated and not closed: these count on the four-colour map")
    remediated: int
    closed: int
    remediation_rate: float | None = Field(
        description="remediated ÷ (total − closed); null when nothing but closed points exist"
    )
    threatened_persons_open: int = Field(description="People threatened by the open points")
    property_value_open: float = Field(description="Property threatened by the open points, 10,000 yuan")
    by_kind: dict[str, int]
    by_status: dict[str, int]
    by_level: dict[str, int]
    open_by_level: dict[str, int] = Field(description="Open points by level (what colours the map)")


class HazardStats(BaseModel):
    """City totals first, then each district."""

    rate_definition: str
    city: Breakdown
    districts: list[Breakdown]
