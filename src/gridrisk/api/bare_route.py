"""A route for the hottest requests: described in OpenAPI like any other, served without FastAPI's
request/response layer.

FastAPI wraps every request in an exit stack, solves its dependencies, runs the endpoint and
validates what it returns: about 55 µs of a worker's CPU per request here, more than a /cells/at
lookup from memory costs. An endpoint that takes only the `Request`, checks its own rights and
parameters and returns a finished `Response` needs none of it. `BareRoute` calls such an endpoint
directly; the route stays an APIRoute, so its OpenAPI description, its place in the routing and
its errors (raised, and answered by the app's handlers) are those of any other route.
"""

from __future__ import annotations

import inspect

from fastapi import Request
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send


class BareRoute(APIRoute):
    """An APIRoute whose endpoint is called as `await endpoint(request)` and must return a Response."""

    def __init__(self, path: str, endpoint, **kwargs) -> None:
        super().__init__(path, endpoint, **kwargs)
        params = list(inspect.signature(endpoint).parameters.values())
        # Nothing for FastAPI to solve: one parameter, the request; no dependencies on the route.
        if len(params) != 1 or params[0].annotation not in (Request, "Request") or self.dependencies:
            raise TypeError(f"{endpoint.__name__}: a bare route's endpoint takes the Request alone")
        self._call = endpoint

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            await super().handle(scope, receive, send)  # FastAPI's own 405
            return
        response = await self._call(Request(scope, receive, send))
        await response(scope, receive, send)
