"""A route for the hottest requests: described in OpenAPI like any other, served without FastAPI's
request/response layer.

FastAPI wraps every request in an exit stack, solves its dependencies, runs the endpoint and
validates what it returns: about 55 µs of a worker's CPU per request here, more than a /cells/at
lookup from memory costs. An endpoint whose parameters are few and plain needs none of it:
`BareRoute` calls it directly with
- the `Request` (a parameter annotated `Request`);
- flat dependencies, `Annotated[T, Depends(check)]` where CHECK takes the request alone (the
  rights checks of api/deps.py), awaited first and in order, as FastAPI would (401/403 before 422);
- at most one query model, `Annotated[Model, Query()]`, validated by pydantic from the query string
  as FastAPI validates one (a list field takes every value, any other the last), its errors raised
  as FastAPI raises them (422, located in `query`).
The endpoint returns a finished `Response`. The route stays an APIRoute, so its OpenAPI
description (generated from the same signature), its place in the routing and its errors (raised,
and answered by the app's handlers) are those of any other route.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from fastapi import Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.types import Receive, Scope, Send

REFUSED = (
    "a bare route's endpoint takes the Request alone, besides request-only dependencies and one query model"
)


def _is_list(annotation: Any) -> bool:
    """Whether a field takes every value of a repeated query parameter (list[...] | None)."""
    if typing.get_origin(annotation) in (list, tuple, set):
        return True
    return any(_is_list(a) for a in typing.get_args(annotation) if a is not type(None))


class _QueryModel:
    """Reads one query model from a request, as FastAPI's query-model parameters are read."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.lists = {f.alias or name for name, f in model.model_fields.items() if _is_list(f.annotation)}

    def read(self, request: Request) -> BaseModel:
        raw: bytes = request.scope.get("query_string", b"")
        values: dict[str, Any] = {}
        if b"%" not in raw and b"+" not in raw:
            # Nothing to decode: split it here, as Starlette would (blank values kept), but cheaper.
            for part in raw.decode("latin-1").split("&"):
                if not part:
                    continue
                key, _, value = part.partition("=")
                if key in self.lists:
                    values.setdefault(key, []).append(value)
                else:
                    values[key] = value  # the last value wins
        else:
            query = request.query_params
            for key in query:
                values[key] = query.getlist(key) if key in self.lists else query[key]
        try:
            return self.model.model_validate(values)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**err, "loc": ("query", *err["loc"])} for err in exc.errors(include_url=False)]
            ) from None


def _plan(endpoint: Callable) -> list[tuple[str, Any]]:
    """How to call ENDPOINT: per parameter, ("request",), ("check", fn) or ("query", reader)."""
    try:
        hints = typing.get_type_hints(endpoint, include_extras=True)
    except NameError:  # a name the endpoint's module cannot resolve: read what is written
        hints = {k: Request if v == "Request" else v for k, v in endpoint.__annotations__.items()}
    steps: list[tuple[str, Any]] = []
    for name in inspect.signature(endpoint).parameters:
        hint = hints.get(name)
        if hint is Request:
            steps.append(("request", None))
            continue
        if typing.get_origin(hint) is typing.Annotated:
            base, *meta = typing.get_args(hint)
            depends = [m for m in meta if isinstance(m, params.Depends)]
            if len(depends) == 1 and depends[0].dependency is not None:
                check = depends[0].dependency
                hints_of = typing.get_type_hints(check)
                args = [p for p in inspect.signature(check).parameters if p != "return"]
                if len(args) == 1 and hints_of.get(args[0]) is Request:
                    steps.append(("check", check))
                    continue
            if (
                any(isinstance(m, params.Query) for m in meta)
                and inspect.isclass(base)
                and issubclass(base, BaseModel)
                and not any(kind == "query" for kind, _ in steps)
            ):
                steps.append(("query", _QueryModel(base)))
                continue
        raise TypeError(f"{endpoint.__name__}: {REFUSED}")
    if not any(kind == "request" for kind, _ in steps):
        raise TypeError(f"{endpoint.__name__}: {REFUSED}")
    return steps


class BareRoute(APIRoute):
    """An APIRoute whose endpoint is called directly (see the module doc) and must return a Response."""

    def __init__(self, path: str, endpoint, **kwargs) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.dependencies:
            raise TypeError(f"{endpoint.__name__}: {REFUSED}")
        self._steps = _plan(endpoint)
        self._call = endpoint

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            await super().handle(scope, receive, send)  # FastAPI's own 405
            return
        request = Request(scope, receive, send)
        args: list[Any] = []
        query = None
        for kind, what in self._steps:
            if kind == "request":
                args.append(request)
            elif kind == "check":
                args.append(await what(request))
            else:
                args.append(None)  # the query, read once every check has passed
                query = (len(args) - 1, what)
        if query is not None:
            args[query[0]] = query[1].read(request)
        response = await self._call(*args)
        await response(scope, receive, send)
