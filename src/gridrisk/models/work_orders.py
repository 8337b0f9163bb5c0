"""Work orders (响应工单): the state machine, transition requests, key-to-cell links, responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, field_validator

from gridrisk.vocabulary import OrderStatus as Status

# open → acknowledged → in_progress → done, or cancelled before done. done and cancelled are final
# for people; only the targeting reopens an order (the warning escalated, or its target came back).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("acknowledged", "cancelled"),
    "acknowledged": ("in_progress", "cancelled"),
    "in_progress": ("done", "cancelled"),
    "done": (),
    "cancelled": (),
}


class PointIn(BaseModel):
    """A GeoJSON Point in WGS 84: where the worker stands."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Point"]
    coordinates: list[float] = Field(min_length=2, max_length=3)

    @field_validator("coordinates")
    @classmethod
    def _range(cls, c: list[float]) -> list[float]:
        if not (-180 <= c[0] <= 180 and -90 <= c[1] <= 90):
            raise ValueError(f"position {c} is outside longitude -180..180 / latitude -90..90")
        return c[:2]


class WorkOrderPatch(BaseModel):
    """Move an order to its next status (If-Match with its ETag)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["acknowledged", "in_progress", "done", "cancelled"]
    note: Annotated[
        str | None,
        Field(
            default=None,
            min_length=1,
            max_length=4000,
            description="What was found and done; required for done and for cancelled",
        ),
    ] = None
    photo_url: HttpUrl | None = Field(default=None, description="A photo of the site (http or https URL)")
    location: PointIn | None = Field(
        default=None, description="Where the worker is; required when a worker key marks an order done"
    )

    @field_validator("photo_url")
    @classmethod
    def _short(cls, url: HttpUrl | None) -> HttpUrl | None:
        if url is not None and len(str(url)) > 2000:
            raise ValueError("the URL is longer than 2,000 characters")
        return url


class CellRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layer: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=64)


class KeyCells(BaseModel):
    """The cells a key's holder works in (replaces the key's links)."""

    model_config = ConfigDict(extra="forbid")

    cells: list[CellRef] = Field(max_length=1000)


class KeyCellsOut(BaseModel):
    key_id: int
    name: str
    role: str
    cells: list[CellRef]


class WorkOrderOut(BaseModel):
    """One work order: target, assigned cell and workers, action, shelter, status and deadlines."""

    model_config = ConfigDict(extra="allow")

    id: int
    warning: dict[str, Any]
    target: dict[str, Any]
    cell: dict[str, Any]
    assignees: list[dict[str, Any]]
    action: str
    level: str
    status: Status
    allowed_next: list[str]
    due_at: datetime
    overdue: bool
    version: int


class WorkOrderPage(BaseModel):
    numberMatched: int
    numberReturned: int
    items: list[WorkOrderOut]
    links: list[dict[str, Any]]


class OrderHistoryEntry(BaseModel):
    version: int
    at: datetime
    by: str
    op: Literal["issued", "escalated", "reopened", "cancelled", "transition"]
    from_status: Status | None
    to_status: Status
    action: str
    note: str | None = None
    photo_url: str | None = None
    location: dict[str, Any] | None = None
    distance_m: float | None = Field(default=None, description="From the reported location to the target")
