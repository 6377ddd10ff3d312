"""HubSpot's error shape: {status: "error", message, correlationId, category, errors?}.

Infrastructure failures (PostgreSQL or Kafka unreachable) become 503 with a clear message;
the request handlers run their writes in one transaction, so such a failure leaves nothing behind.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mailstream.core.db import DATABASE_DOWN
from mailstream.core.retry import MailstreamError
from mailstream.gateway.kafka_link import KafkaUnavailable

# HubSpot's name for the request's correlation id; the name this API used first is sent too.
CORRELATION_HEADER = "x-hubspot-correlation-id"
LEGACY_CORRELATION_HEADER = "X-Correlation-Id"
CORRELATION_HEADERS = (CORRELATION_HEADER, LEGACY_CORRELATION_HEADER)
log = logging.getLogger("mailstream.gateway.errors")


class ApiError(MailstreamError):
    """An answer in HubSpot's error shape to the request as it is: not retriable (the database or
    Kafka being down raise their own, transient errors)."""

    def __init__(
        self,
        status: int,
        category: str,
        message: str,
        errors: list[dict] | None = None,
        *,
        context: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.category, self.message, self.errors = status, category, message, errors
        self.context, self.headers = context, headers


def not_found(what: str) -> ApiError:
    return ApiError(404, "OBJECT_NOT_FOUND", f"{what} not found")


def conflict(message: str) -> ApiError:
    return ApiError(409, "CONFLICT", message)


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "VALIDATION_ERROR", f"Invalid input: {field}: {message}", [{"message": message, "in": field}])


def error_parts(
    status: int,
    category: str,
    message: str,
    errors: list[dict] | None,
    correlation_id: str,
    context: dict[str, list[str]] | None = None,
    extra_headers: dict[str, str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """(body, headers) of an error answer in HubSpot's shape."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id,
        "category": category,
    }
    if errors:
        body["errors"] = errors
    if context:
        body["context"] = context
    headers = dict.fromkeys(CORRELATION_HEADERS, correlation_id)
    if extra_headers:
        headers.update(extra_headers)
    if status == 401:
        headers["x-hubspot-auth-failure"] = "401 Unauthorized"
    if status == 503:
        headers["Retry-After"] = "1"
    return body, headers


def error_response(
    request: Request,
    status: int,
    category: str,
    message: str,
    errors: list[dict] | None = None,
    context: dict[str, list[str]] | None = None,
    extra_headers: dict[str, str] | None = None,
) -> JSONResponse:
    correlation_id = getattr(request.state, "correlation_id", None) or str(uuid.uuid4())
    body, headers = error_parts(status, category, message, errors, correlation_id, context, extra_headers)
    return JSONResponse(body, status_code=status, headers=headers)


def _field_path(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_errors(errors: list[dict]) -> ApiError:
    """A 400 naming each invalid field, from pydantic's (or FastAPI's) error list."""
    found = [{"message": str(e["msg"]), "in": _field_path(tuple(e["loc"])), "code": str(e["type"])} for e in errors]
    summary = "; ".join(f"{e['in']}: {e['message']}" for e in found)
    return ApiError(400, "VALIDATION_ERROR", f"Invalid input: {summary}", found)


DATABASE_DOWN_MESSAGE = "The database is unavailable: nothing was done or recorded; retry later"
KAFKA_DOWN_MESSAGE = "Kafka did not acknowledge the send: it was not accepted and nothing was recorded; retry later"


RATE_LIMIT_STATE = "rate_limit_headers"
_CORRELATION_NAMES = tuple(name.lower().encode() for name in CORRELATION_HEADERS)


class CorrelationId:
    """Pure ASGI middleware (cheaper than BaseHTTPMiddleware): a uuid per request, in
    request.state for error bodies and in the x-hubspot-correlation-id (and X-Correlation-Id)
    header of every response; with the caller's X-HubSpot-RateLimit-* headers when deps.py put them
    in request.state."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        correlation_id = str(uuid.uuid4())
        state = scope.setdefault("state", {})
        state["correlation_id"] = correlation_id
        value = correlation_id.encode()

        async def send_with_header(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name in _CORRELATION_NAMES if name not in present]
                # the caller's key's request window (deps.py), on every answer to an authenticated request
                for name, limit_value in state.get(RATE_LIMIT_STATE, {}).items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), limit_value.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_header)


def install_error_handlers(app: FastAPI) -> None:
    app.add_middleware(CorrelationId)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(request, exc.status, exc.category, exc.message, exc.errors, exc.context, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        error = validation_errors(list(exc.errors()))
        return error_response(request, error.status, error.category, error.message, error.errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        category = {
            400: "VALIDATION_ERROR",
            401: "INVALID_AUTHENTICATION",
            404: "OBJECT_NOT_FOUND",
            405: "METHOD_NOT_ALLOWED",
        }.get(exc.status_code, "ERROR")
        return error_response(request, exc.status_code, category, str(exc.detail))

    async def database_down(request: Request, exc: Exception):
        log.warning("database unavailable", extra={"fields": {"error": repr(exc), "path": request.url.path}})
        return error_response(request, 503, "SERVICE_UNAVAILABLE", DATABASE_DOWN_MESSAGE)

    async def kafka_down(request: Request, exc: Exception):
        log.warning("kafka unavailable", extra={"fields": {"error": repr(exc), "path": request.url.path}})
        return error_response(request, 503, "SERVICE_UNAVAILABLE", KAFKA_DOWN_MESSAGE)

    @app.exception_handler(asyncpg.DataError)
    async def bad_data(request: Request, exc: asyncpg.DataError):
        # e.g. a NUL character in a text field, or a number out of range: the input, not the server
        return error_response(
            request,
            400,
            "VALIDATION_ERROR",
            f"Invalid input: {type(exc).__name__}: {exc}",
            [{"message": str(exc), "in": "body"}],
        )

    for exc_type in DATABASE_DOWN:
        app.add_exception_handler(exc_type, database_down)
    for exc_type in (KafkaError, KafkaUnavailable):
        app.add_exception_handler(exc_type, kafka_down)
