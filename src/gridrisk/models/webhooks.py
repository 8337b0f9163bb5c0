"""Webhook endpoints (admin) and their delivery log: requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from gridrisk.vocabulary import DeliveryStatus, WebhookKind

Kinds = Annotated[
    list[WebhookKind],
    Field(
        min_length=1,
        max_length=10,
        description="Event kinds to receive: warning, work_order, cell_colour, ...",
    ),
]
Url = Annotated[AnyHttpUrl, Field(description="Where deliveries are POSTed (http or https)")]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    kinds: Kinds
    description: Annotated[str | None, Field(default=None, max_length=500)] = None

    @field_validator("kinds")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class WebhookUpdate(BaseModel):
    """Only the fields sent change; `enabled: true` re-enables an endpoint a 410 disabled."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    kinds: Kinds | None = None
    description: Annotated[str | None, Field(default=None, max_length=500)] = None
    enabled: bool | None = None


class WebhookPublic(BaseModel):
    id: int
    url: str
    kinds: list[str]
    description: str | None
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    deliveries: dict[str, int] | None = Field(description="Deliveries by status")


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="The signing secret (whsec_…): shown once, keep it to verify signatures")


class Delivery(BaseModel):
    id: int
    webhook_id: str = Field(description="The `webhook-id` header, the same on every retry")
    event_id: int
    kind: str
    status: DeliveryStatus
    attempts: int
    next_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None
    event_at: datetime
