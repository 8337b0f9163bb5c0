"""Webhooks for other systems (admins): register endpoints, read their delivery log, redeliver."""

from __future__ import annotations

import base64
import secrets
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from gridrisk.api.deps import Admin, PoolDep
from gridrisk.api.responses import OrjsonResponse
from gridrisk.db.sql_files import sql
from gridrisk.errors import NotFound
from gridrisk.models.webhooks import Delivery, WebhookCreate, WebhookCreated, WebhookPublic, WebhookUpdate
from gridrisk.vocabulary import DeliveryStatus

router = APIRouter(tags=["webhooks"])

ABOUT = (
    "Deliveries follow Standard Webhooks v1: a POST with the JSON `{type, timestamp, data}` (data: the "
    "event as `/events` streams it) and the headers `webhook-id` (the same on every retry), "
    "`webhook-timestamp` and `webhook-signature` (`v1,` + base64 HMAC-SHA256 over `id.timestamp.body` "
    "with the endpoint's secret; the `standardwebhooks` libraries verify it). Every event of the kinds "
    "subscribed is delivered at least once, in order per endpoint: a 2xx answer delivers it; 410 Gone "
    "disables the endpoint (events meanwhile are not queued for it; PATCH `enabled: true` resumes); "
    "anything else (or no answer within 10 s) retries it with exponential backoff and jitter (or after "
    "the answer's Retry-After), about a day, then marks it failed."
)


def _not_found(webhook_id: int) -> NotFound:
    return NotFound(f"No webhook endpoint {webhook_id}.")


async def _endpoint(conn, webhook_id: int) -> dict:
    cur = await conn.execute(sql("webhook_endpoints"), {"id": webhook_id})
    row = await cur.fetchone()
    if row is None:
        raise _not_found(webhook_id)
    return row


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookCreated,
    summary="Register a webhook endpoint",
    description=ABOUT,
)
async def create_webhook(body: WebhookCreate, pool: PoolDep, who: Admin):
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    async with pool.connection() as conn, conn.transaction():
        params = {
            "url": str(body.url),
            "secret": secret,
            "kinds": body.kinds,
            "description": body.description,
        }
        cur = await conn.execute(sql("webhook_insert"), {**params, "who": who.name})
        row = await _endpoint(conn, (await cur.fetchone())["id"])
    return OrjsonResponse(
        {**row, "secret": secret}, status_code=201, headers={"Location": f"/webhooks/{row['id']}"}
    )


@router.get(
    "/webhooks", response_model=list[WebhookPublic], summary="The webhook endpoints", description=ABOUT
)
async def list_webhooks(pool: PoolDep, _: Admin):
    async with pool.connection() as conn:
        cur = await conn.execute(sql("webhook_endpoints"), {"id": None})
        return OrjsonResponse(await cur.fetchall())


@router.get("/webhooks/{webhook_id}", response_model=WebhookPublic, summary="One webhook endpoint")
async def get_webhook(webhook_id: int, pool: PoolDep, _: Admin):
    async with pool.connection() as conn:
        return OrjsonResponse(await _endpoint(conn, webhook_id))


@router.patch("/webhooks/{webhook_id}", response_model=WebhookPublic, summary="Change a webhook endpoint")
async def update_webhook(webhook_id: int, body: WebhookUpdate, pool: PoolDep, _: Admin):
    sent = body.model_dump(exclude_unset=True)
    params = {
        "id": webhook_id,
        "url": str(body.url) if body.url is not None else None,
        "kinds": body.kinds,
        "set_description": "description" in sent,
        "description": body.description,
        "enabled": body.enabled,
    }
    async with pool.connection() as conn, conn.transaction():
        cur = await conn.execute(sql("webhook_update"), params)
        if await cur.fetchone() is None:
            raise _not_found(webhook_id)
        return OrjsonResponse(await _endpoint(conn, webhook_id))


@router.delete("/webhooks/{webhook_id}", status_code=204, summary="Remove a webhook endpoint and its log")
async def delete_webhook(webhook_id: int, pool: PoolDep, _: Admin):
    async with pool.connection() as conn:
        cur = await conn.execute(sql("webhook_delete"), {"id": webhook_id})
        if await cur.fetchone() is None:
            raise _not_found(webhook_id)
    return Response(status_code=204)  # no body at all: uvicorn refuses one on a 204


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=list[Delivery],
    summary="An endpoint's delivery log, newest first",
)
async def webhook_deliveries(
    webhook_id: int,
    pool: PoolDep,
    _: Admin,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    async with pool.connection() as conn:
        await _endpoint(conn, webhook_id)
        cur = await conn.execute(
            sql("webhook_deliveries"), {"id": webhook_id, "status": status, "limit": limit}
        )
        return OrjsonResponse(await cur.fetchall())


@router.post(
    "/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    summary="Send a delivery again (same webhook id), now",
)
async def redeliver(webhook_id: int, delivery_id: int, request: Request, pool: PoolDep, _: Admin):
    async with pool.connection() as conn:
        cur = await conn.execute(sql("webhook_redeliver"), {"id": webhook_id, "delivery_id": delivery_id})
        if await cur.fetchone() is None:
            raise NotFound(f"No delivery {delivery_id} of webhook endpoint {webhook_id}.")
    request.app.state.webhooks.wake()  # the dispatcher made in the lifespan
    return OrjsonResponse({"id": delivery_id, "status": "pending"}, status_code=202)
