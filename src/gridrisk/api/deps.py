"""Annotated dependencies shared by the routes: settings, the pool, the caller and their rights."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from gridrisk.api_keys import ANONYMOUS, Principal, split_prefix, verify
from gridrisk.errors import Forbidden, Unauthorized
from gridrisk.settings import Settings


# Every dependency is async: FastAPI runs sync ones in a thread pool, a hop per request.
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_pool(request: Request) -> AsyncConnectionPool:
    """The primary, or for a plain read the replica the read routing chose (api/read_routing.py)."""
    return request.scope.get("state", {}).get("read_pool") or request.app.state.pool


SettingsDep = Annotated[Settings, Depends(get_settings)]
PoolDep = Annotated[AsyncConnectionPool, Depends(get_pool)]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="gridrisk"'}


async def get_principal(request: Request) -> Principal:
    """Resolve `Authorization: Bearer KEY` to its holder; anonymous when no header is sent."""
    pool = request.app.state.pool
    header = request.headers.get("authorization")
    if not header:
        return ANONYMOUS
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthorized("Send the API key as 'Authorization: Bearer KEY'.", headers=_CHALLENGE)
    prefix = split_prefix(key)
    if prefix is None:
        raise Unauthorized("The API key is malformed; keys look like grk_xxxxxxxx_….", headers=_CHALLENGE)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id, name, role, key_hash FROM api_keys WHERE prefix = %s AND revoked_at IS NULL",
            (prefix,),
        )
        row = await cur.fetchone()
    if row is None or not verify(row["key_hash"], key):
        raise Unauthorized("The API key is unknown or revoked.", headers=_CHALLENGE)
    return Principal(key_id=row["id"], name=row["name"], role=row["role"])


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(capability: str):
    """A dependency that lets the request through only when the caller has CAPABILITY."""

    # One flat dependency (no sub-dependencies): it runs on every request, hot paths included.
    async def _check(request: Request) -> Principal:
        principal = await get_principal(request)
        if capability == "read" and request.app.state.settings.public_read:
            return principal
        if principal is ANONYMOUS:
            raise Unauthorized(
                f"This operation needs an API key with the '{capability}' right.", headers=_CHALLENGE
            )
        if not principal.can(capability):
            raise Forbidden(f"The role '{principal.role}' may not do this (needs '{capability}').")
        return principal

    return _check


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
FieldWorker = Annotated[Principal, Depends(require("field"))]
