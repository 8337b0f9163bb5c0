"""Liveness (no database) and health (database, PostGIS and migration revision)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request

from gridrisk import __version__
from gridrisk.api.deps import PoolDep
from gridrisk.api.responses import OrjsonResponse
from gridrisk.errors import problem
from gridrisk.models.health import HealthPublic, Livez
from gridrisk.services.records import fetch_one

router = APIRouter(tags=["health"])


@router.get("/livez", response_model=Livez, summary="Liveness: answers without touching the database")
async def livez() -> OrjsonResponse:
    return OrjsonResponse({"status": "ok"})


@router.get(
    "/health",
    response_model=HealthPublic,
    summary="Health: database reachable, PostGIS version, migration revision",
    responses={
        503: {"description": "The database is unreachable", "content": {"application/problem+json": {}}}
    },
)
async def health(pool: PoolDep, request: Request):
    try:
        async with asyncio.timeout(3):
            async with pool.connection(timeout=3) as conn:
                row = await fetch_one(conn, "health")
    except Exception:  # any failure to reach the database is the same answer: not healthy
        return problem(
            503, "The database is unreachable; the service retries by itself.", database="unreachable"
        )
    doc = {
        "status": "ok",
        "version": __version__,
        "database": "ok",
        "postgres": row["postgres"],
        "postgis": row["postgis"],
        "revision": row["revision"],
    }
    lookup = getattr(request.app.state, "cell_lookup", None)
    if lookup is not None:  # whether /cells/at answers from memory yet, and with tiles
        doc["lookup"] = lookup.readiness()
    nearest = getattr(request.app.state, "nearest_shelters", None)
    if nearest is not None:  # whether /shelters/nearest answers from memory (loaded on first use)
        doc["lookup"] = {**doc.get("lookup", {}), "shelters": nearest.stats()}
    replicas = request.app.state.replicas
    if replicas is not None:  # each replica's state and lag, as the read routing sees them
        doc["replication"] = replicas.state()
    return OrjsonResponse(doc)
