"""Error classes, the one status-code map, problem+json handlers and database-error translation."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import orjson
import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("gridrisk.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "https://gridrisk.dev/problems/"
# Sent with every 503: when to come back (seconds), so clients back off instead of hammering.
RETRY_AFTER = {"Retry-After": "2"}


class GridRiskError(Exception):
    """Base of every error the service answers on purpose; subclasses fix the status."""

    status: int = 500
    title: str = "Internal server error"
    kind: str = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra


class BadRequest(GridRiskError):
    status, title, kind = 400, "Bad request", "bad-request"


class Unauthorized(GridRiskError):
    status, title, kind = 401, "Authentication required", "unauthorized"


class Forbidden(GridRiskError):
    status, title, kind = 403, "Forbidden", "forbidden"


class NotFound(GridRiskError):
    status, title, kind = 404, "Not found", "not-found"


class Conflict(GridRiskError):
    status, title, kind = 409, "Conflict", "conflict"


class PreconditionFailed(GridRiskError):
    status, title, kind = 412, "Precondition failed", "precondition-failed"


class PayloadTooLarge(GridRiskError):
    status, title, kind = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(GridRiskError):
    status, title, kind = 415, "Unsupported media type", "unsupported-media-type"


class InvalidInput(GridRiskError):
    status, title, kind = 422, "Invalid input", "invalid-input"


class PreconditionRequired(GridRiskError):
    status, title, kind = 428, "Precondition required", "precondition-required"


class ServiceUnavailable(GridRiskError):
    status, title, kind = 503, "Service unavailable", "service-unavailable"


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    kind: str | None = None,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """Build one RFC 9457 problem+json response; the only error shape the service emits."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + (kind or _kind_for(status)),
        "title": title or _title_for(status),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    body.update(extra)
    return Response(
        orjson.dumps(body, default=str), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def _title_for(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _kind_for(status: int) -> str:
    return _title_for(status).lower().replace(" ", "-")


# SQLSTATE classes → (status, detail) for errors that bad input can provoke in the database.
# Anything not listed is an internal error: logged in full, answered as a bare 500.
_SQLSTATE_MAP: dict[type[psycopg.Error], tuple[int, str]] = {
    psycopg.errors.UniqueViolation: (409, "A record with the same unique key already exists."),
    psycopg.errors.ForeignKeyViolation: (409, "The record refers to, or is referred to by, another record."),
    psycopg.errors.CheckViolation: (422, "A value is outside the range the field allows."),
    psycopg.errors.NotNullViolation: (422, "A required field is missing."),
    psycopg.errors.InvalidTextRepresentation: (422, "A value has the wrong format."),
    psycopg.errors.NumericValueOutOfRange: (422, "A number is out of range."),
    psycopg.errors.StringDataRightTruncation: (422, "A text value is too long."),
    psycopg.errors.SerializationFailure: (409, "A concurrent change conflicted with this one; retry."),
    psycopg.errors.DeadlockDetected: (409, "A concurrent change conflicted with this one; retry."),
    psycopg.errors.QueryCanceled: (503, "The database took too long to answer; try again."),
    # Any other data error is still about a value the client sent (NUL characters in text,
    # numbers PostgreSQL cannot hold, ...): the client's to fix.
    psycopg.DataError: (
        422,
        "A value cannot be stored: text must not contain NUL characters, numbers must be finite.",
    ),
}


def translate_db_error(exc: psycopg.Error) -> tuple[int, str, dict[str, Any]]:
    """Map a database error to (status, safe detail, extra) without leaking SQL or internals."""
    for cls, (status, detail) in _SQLSTATE_MAP.items():
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            diag = getattr(exc, "diag", None)
            # The constraint name is part of our schema's public vocabulary, not a leak.
            if diag is not None and diag.constraint_name:
                extra["constraint"] = diag.constraint_name
            return status, detail, extra
    if isinstance(exc, psycopg.OperationalError):
        return 503, "The database is unreachable; try again shortly.", {}
    return 500, "An internal error occurred; it has been logged.", {}


def _field_name(loc: tuple) -> str:
    """'lon' for ('query', 'lon'); 'geometry.coordinates' for ('body', 'geometry', 'coordinates')."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(str(p) for p in parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that turn every failure into problem+json."""

    @app.exception_handler(GridRiskError)
    async def _own(request: Request, exc: GridRiskError) -> Response:
        return problem(
            exc.status,
            exc.detail,
            title=exc.title,
            kind=exc.kind,
            instance=request.url.path,
            errors=exc.errors,
            headers={**RETRY_AFTER, **exc.headers} if exc.status == 503 else exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": _field_name(err.get("loc", ())),
                "location": (err.get("loc") or ("body",))[0],
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "value_error"),
            }
            for err in exc.errors()
        ]
        fields = ", ".join(sorted({e["field"] for e in errors}))
        return problem(
            422,
            f"Invalid input in: {fields}.",
            title="Invalid input",
            kind="invalid-input",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else _title_for(exc.status_code)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No resource at {request.url.path}."
        return problem(
            exc.status_code, detail, instance=request.url.path, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(psycopg.Error)
    async def _db(request: Request, exc: psycopg.Error) -> Response:
        if isinstance(exc, psycopg.OperationalError):
            request.state.db_unreachable = True  # a read on a replica is retried on the primary
        status, detail, extra = translate_db_error(exc)
        if status >= 500:
            log.error("database error on %s %s", request.method, request.url.path, exc_info=exc)
        else:
            log.info("database rejected input on %s: %s", request.url.path, exc.sqlstate)
        headers = RETRY_AFTER if status == 503 else None
        return problem(status, detail, instance=request.url.path, headers=headers, **extra)

    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _pool(request: Request, exc: psycopg_pool.PoolTimeout) -> Response:
        request.state.db_unreachable = True
        log.warning("no database connection within the pool timeout on %s", request.url.path)
        return problem(
            503,
            "The database is unreachable or busy; try again shortly.",
            instance=request.url.path,
            headers=RETRY_AFTER,
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "An internal error occurred; it has been logged.", instance=request.url.path)


class Problem(BaseModel):
    """RFC 9457 problem details, the body of every error response."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


def _problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {PROBLEM_JSON: {}}}


# Documented on every operation: what any request may meet, always as problem+json.
COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("Bad request"),
    401: _problem_doc("Missing or invalid API key"),
    403: _problem_doc("The key's role may not do this"),
    404: _problem_doc("Not found"),
    413: _problem_doc("Request body or item count too large"),
    422: _problem_doc("Invalid input; `errors` names the fields"),
    429: _problem_doc("Too many requests from this key or address; see Retry-After"),
    500: _problem_doc("Internal error (details are logged, never returned)"),
    503: _problem_doc("Database unreachable or busy, or too many heavy reads; see Retry-After"),
}
