"""Build the FastAPI application: `create_app(settings)` wires settings, the pool and the routers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from gridrisk import __version__
from gridrisk.api.admission import Admission
from gridrisk.api.limits import BodySizeLimit
from gridrisk.api.read_routing import ReadRouting
from gridrisk.api.responses import OrjsonResponse
from gridrisk.api.routes import (
    cells,
    districts,
    events,
    health,
    layers,
    plates,
    risk_map,
    tiles,
    vocabulary,
    warnings,
    web,
    webhooks,
    work_orders,
)
from gridrisk.db.pool import make_pool, open_pool
from gridrisk.db.replicas import HEADER, SERVED_BY, ReplicaSet
from gridrisk.errors import COMMON_RESPONSES, install_error_handlers
from gridrisk.events.hub import EventHub
from gridrisk.events.outbox import OutboxReader
from gridrisk.lookup.shelters import NearestShelters
from gridrisk.lookup.state import LookupService
from gridrisk.ogc import routes as ogc
from gridrisk.registry.catalog import KINDS
from gridrisk.registry.routes import build_router
from gridrisk.registry.shelters import nearest_router as shelters_nearest
from gridrisk.services.warning_expiry import run_expiry
from gridrisk.services.webhook_delivery import WebhookDispatcher
from gridrisk.settings import Settings
from gridrisk.tiles.cache import TileService

log = logging.getLogger("gridrisk")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The application for SETTINGS (read from the environment only when none are given)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = make_pool(settings)
        app.state.pool = pool
        await open_pool(pool)
        if settings.replica_urls:  # plain reads spread over the replicas (api/read_routing.py)
            app.state.replicas = ReplicaSet.from_settings(settings, pool)
            await app.state.replicas.start()
        # One outbox reader per process, and its consumers: subscribed before it starts, so that
        # each sees its first read.
        outbox = OutboxReader(pool)
        app.state.outbox = outbox
        app.state.event_hub = EventHub(outbox)
        app.state.tile_service = TileService(
            pool, outbox, settings.tile_cache_mb * 1024 * 1024, replicas=app.state.replicas
        )
        app.state.cell_lookup = LookupService(pool, outbox, settings.lookup_tile_m)  # /cells/at from memory
        app.state.nearest_shelters = NearestShelters(pool, outbox, app.state.cell_lookup)  # and the shelters
        dispatcher = WebhookDispatcher(pool, timeout_s=settings.webhook_timeout_s)
        app.state.webhooks = dispatcher
        outbox.subscribe(dispatcher.on_outbox)  # a new event may be a delivery due
        outbox.start()
        dispatcher.start()
        expiry = None
        if settings.expiry_interval_s > 0:
            expiry = asyncio.get_running_loop().create_task(
                run_expiry(pool, settings.expiry_interval_s), name="gridrisk-expiry"
            )
        log.info("gridrisk %s started; database pool opening in the background", __version__)
        try:
            yield
        finally:
            if expiry is not None:
                expiry.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await expiry
            await dispatcher.aclose()
            await app.state.event_hub.aclose()
            await outbox.aclose()
            await app.state.nearest_shelters.aclose()
            await app.state.cell_lookup.aclose()
            if app.state.replicas is not None:
                await app.state.replicas.aclose()
                app.state.replicas = None
            await pool.close()

    app = FastAPI(
        title="gridrisk",
        version=__version__,
        summary="Spatial risk-grid service: three city grids, a four-colour risk map, spatial REST.",
        description=(
            "Coordinates are WGS 84 longitude/latitude (EPSG:4326), GeoJSON per RFC 7946. "
            "Errors are RFC 9457 `application/problem+json`. Writes need `Authorization: Bearer KEY`."
        ),
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
        docs_url=None,  # /docs: api/routes/web.py, Swagger UI from the vendored copy
        redoc_url=None,
        responses=COMMON_RESPONSES,
    )
    app.state.settings = settings
    app.state.replicas = None
    install_error_handlers(app)
    app.add_middleware(ReadRouting)  # innermost: it sees the error handlers' answers
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Outside the body limit, inside CORS (so a browser can read a 429/503 and its Retry-After).
    app.add_middleware(Admission, settings=settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "Location", "Last-Event-ID", "Retry-After", HEADER, SERVED_BY],
        )
    # Routes are matched in order, one by one: the hottest come first ("which cell am I in" is
    # asked by every phone, constantly: with cells placed after the tile, district and layer routes,
    # trying those first cost about 40 µs of each lookup; the nearest shelters, placed behind every
    # registry, spent about 140 µs of each answer on matching).
    hot = (health.router, cells.router, shelters_nearest)
    routers = (
        tiles,
        districts,
        layers,
        risk_map,
        plates,
        events,
        warnings,
        work_orders,
        webhooks,
        vocabulary,
        ogc,
        web,
    )
    for router in (*hot, *(module.router for module in routers)):
        app.include_router(router)
    for kind in KINDS.values():  # risk sources, shelters, hazard points: one router each
        app.include_router(build_router(kind))
    return app
