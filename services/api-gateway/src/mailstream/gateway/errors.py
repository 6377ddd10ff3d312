"""HubSpot's error shape: {status: "error", message, correlationId, category, errors?}."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

CORRELATION_HEADER = "X-Correlation-Id"


class ApiError(Exception):
    def __init__(self, status: int, category: str, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status, self.category, self.message, self.errors = status, category, message, errors


def not_found(what: str) -> ApiError:
    return ApiError(404, "OBJECT_NOT_FOUND", f"{what} not found")


def unavailable(message: str) -> ApiError:
    return ApiError(503, "SERVICE_UNAVAILABLE", message)


def error_response(
    request: Request, status: int, category: str, message: str, errors: list[dict] | None = None
) -> JSONResponse:
    correlation_id = getattr(request.state, "correlation_id", None) or str(uuid.uuid4())
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id,
        "category": category,
    }
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers={CORRELATION_HEADER: correlation_id})


def _field_path(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def correlation(request: Request, call_next):
        request.state.correlation_id = str(uuid.uuid4())
        response = await call_next(request)
        response.headers.setdefault(CORRELATION_HEADER, request.state.correlation_id)
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return error_response(request, exc.status, exc.category, exc.message, exc.errors)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = [{"message": e["msg"], "in": _field_path(tuple(e["loc"])), "code": e["type"]} for e in exc.errors()]
        summary = "; ".join(f"{e['in']}: {e['message']}" for e in errors)
        return error_response(request, 400, "VALIDATION_ERROR", f"Invalid input: {summary}", errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        category = {401: "INVALID_AUTHENTICATION", 404: "OBJECT_NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(
            exc.status_code, "ERROR"
        )
        return error_response(request, exc.status_code, category, str(exc.detail))
