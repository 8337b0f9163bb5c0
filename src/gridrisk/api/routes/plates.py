"""Address plates (二维码地址标牌): what a scanned plate resolves to, and the QR code to print on it."""

from __future__ import annotations

import hashlib
import io
from typing import Annotated, Literal
from urllib.parse import quote

import segno
from fastapi import APIRouter, Header, Path, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from gridrisk.api.deps import PoolDep, Reader, SettingsDep
from gridrisk.api.etags import not_modified
from gridrisk.api.geojson import raw_json
from gridrisk.db.sql_files import sql
from gridrisk.errors import NotFound
from gridrisk.models.layers import CellAtCell
from gridrisk.services.records import fetch_one
from gridrisk.vocabulary import Colour, SourceStatus

router = APIRouter(tags=["plates"])

SVG = "image/svg+xml"
# Error correction M (15 % of the code may be dirt or damage); 10 units per module and the
# 4-module quiet zone the standard asks for, so the vector prints sharp at any plate size.
QR_ERROR = "m"
QR_SCALE = 10
QR_BORDER = 4
QR_MAX_AGE_S = 300
MAX_ID = 2**63 - 1


class PlateSource(BaseModel):
    id: int
    code: str
    name: str
    category: str
    level: Colour
    status: SourceStatus


class PointGeometry(BaseModel):
    type: Literal["Point"]
    coordinates: list[float] = Field(description="[lon, lat] in WGS 84")


class PlatePublic(BaseModel):
    plate_code: str
    address: str | None
    location: PointGeometry = Field(description="The source's point, or a point inside its polygon")
    inside_city: bool
    cells: dict[str, CellAtCell | None] = Field(description="Grid layer → the cell at the plate, with colour")
    admin: dict[str, CellAtCell | None] = Field(description="Administrative layer → the unit at the plate")
    risk_sources: list[PlateSource] = Field(description="The risk sources registered at this plate")


def plate_url(base_url: str, plate_code: str) -> str:
    """The public URL a plate's QR code encodes: {base}/plates/{code}, the code percent-encoded."""
    return str(base_url).rstrip("/") + "/plates/" + quote(plate_code, safe="")


def qr_svg(url: str, plate_code: str) -> bytes:
    """The QR code of URL as a standalone SVG (deterministic: the same URL gives the same bytes)."""
    qr = segno.make(url, error=QR_ERROR, micro=False, boost_error=False)
    out = io.BytesIO()
    qr.save(out, kind="svg", scale=QR_SCALE, border=QR_BORDER, title=f"Address plate {plate_code}", desc=url)
    return out.getvalue()


@router.get(
    # `:path` so that a code containing "/" (percent-encoded in the QR) still resolves.
    "/plates/{plate_code:path}",
    response_model=PlatePublic,
    summary="Resolve an address plate: its location, the cell of every layer there, its risk sources",
    responses={404: {"description": "No such plate", "content": {"application/problem+json": {}}}},
)
async def plate(plate_code: Annotated[str, Path(min_length=1, max_length=64)], pool: PoolDep, _: Reader):
    async with pool.connection() as conn:
        cur = await conn.execute(sql("plate_lookup"), {"plate": plate_code}, prepare=True)
        row = await cur.fetchone()
    if row is None:
        raise NotFound(
            f"No address plate '{plate_code}' is registered; check the code printed on the plate.",
            plate_code=plate_code,
        )
    return raw_json(row["body"], media_type="application/json")


@router.get(
    "/risk-sources/{source_id}/qr.svg",
    response_class=Response,
    summary="The QR code (SVG) to print on a risk source's address plate; it encodes the plate's URL",
    responses={
        200: {"description": "The QR code", "content": {SVG: {"schema": {"type": "string"}}}},
        304: {"description": "Not modified (If-None-Match)"},
        404: {
            "description": "No such risk source, or it has no plate",
            "content": {"application/problem+json": {}},
        },
    },
)
async def plate_qr(
    source_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    _: Reader,
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    async with pool.connection() as conn:
        row = await fetch_one(conn, "plate_qr_source", {"id": source_id})
    if row is None:
        raise NotFound(f"No risk source with id {source_id}.")
    if row["plate_code"] is None:
        raise NotFound(
            f"Risk source {source_id} has no address plate; set its plate_code first, then print this code."
        )
    url = plate_url(str(request.base_url), row["plate_code"])
    body = qr_svg(url, row["plate_code"])
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    # Behind a key (GRIDRISK_PUBLIC_READ=false) no shared cache may keep it.
    headers = {
        "ETag": etag,
        "Cache-Control": f"{'public' if settings.public_read else 'private'}, max-age={QR_MAX_AGE_S}",
    }
    if not_modified(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=SVG, headers=headers)
