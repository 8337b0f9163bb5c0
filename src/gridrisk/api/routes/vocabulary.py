"""GET /vocabulary: every code the API speaks (colours, statuses, kinds, categories) with its
Chinese and English name, so that a frontend shows words, not codes, in either language."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Response

from gridrisk.api.deps import PoolDep, Reader
from gridrisk.api.etags import not_modified
from gridrisk.db.sql_files import sql
from gridrisk.tiles.cache import content_etag
from gridrisk.vocabulary import labels

router = APIRouter(tags=["vocabulary"])


@router.get(
    "/vocabulary",
    summary="Names of every code, in Chinese and English",
    description='`{set: {code: {"zh": …, "en": …}}}` for the four colours and their risk levels, '
    "source, shelter, hazard, order and team statuses, shelter classes, hazard kinds and types, work "
    "order actions, target types, vulnerable-site kinds, team capabilities and types, depot levels, "
    "and the risk-source categories of this city (`risk_category`, from its table). Revalidate with "
    "the ETag.",
    responses={200: {"content": {"application/json": {}}}, 304: {"description": "Not modified"}},
    response_class=Response,
)
async def vocabulary(
    pool: PoolDep, _: Reader, if_none_match: Annotated[str | None, Header()] = None
) -> Response:
    async with pool.connection() as conn:
        cur = await conn.execute(sql("risk_categories"))
        rows = await cur.fetchall()
    doc = {**labels(), "risk_category": {r["code"]: {"zh": r["zh"], "en": r["en"]} for r in rows}}
    body = orjson.dumps(doc)
    etag = content_etag(body)
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if not_modified(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)
