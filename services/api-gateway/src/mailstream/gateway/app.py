"""The FastAPI application: routes (by role, in routes/) translate HTTP to handlers and nothing more."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mailstream.core.db import database_reachable
from mailstream.gateway import console
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.errors import install_error_handlers
from mailstream.gateway.http_metrics import HttpMetrics
from mailstream.gateway.models import ErrorBody
from mailstream.gateway.routes import (
    contacts,
    crm_contacts,
    domains,
    emails,
    events,
    ips,
    one_off_sends,
    sendgrid,
    sendgrid_batches,
    sends,
    stats,
    suppression_lists,
    suppressions,
    tokens,
    triggers,
    users,
    webhooks,
)

ROUTERS = (
    sends.router,
    emails.router,
    contacts.router,
    stats.router,
    users.router,
    tokens.router,
    domains.router,
    ips.router,
    crm_contacts.router,
    suppression_lists.router,  # before suppressions': export.csv and batch/... are not addresses
    suppressions.router,
    events.router,
    one_off_sends.router,
    triggers.router,
    webhooks.router,
    sendgrid.router,  # SendGrid's /v3/mail/send, answering in SendGrid's error shape
    sendgrid_batches.router,  # SendGrid's /v3/mail/batch and /v3/user/scheduled_sends, likewise
)
ERROR_STATUSES = {
    "400": "Malformed request (VALIDATION_ERROR, errors[].in names the field)",
    "401": "Missing, invalid or revoked API key (INVALID_AUTHENTICATION)",
    "403": "The API key lacks the operation's scope (MISSING_SCOPES, context.missingScopes names it)",
    "404": "No such object in the caller's account (OBJECT_NOT_FOUND)",
    "409": "The object's state does not allow this (CONFLICT)",
    "429": "The API key's request limit is reached (RATE_LIMITS): retry after Retry-After seconds",
    "503": "PostgreSQL or Kafka unavailable: nothing was done (SERVICE_UNAVAILABLE)",
}


def create_app(deps: Dependencies) -> FastAPI:
    app = FastAPI(title="mailstream API", version="0.1.0", description="HubSpot-compatible transactional email API")
    app.state.deps = deps
    install_error_handlers(app)
    app.add_middleware(HttpMetrics)
    for router in ROUTERS:
        app.include_router(router)
    console.mount(app)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = {"postgres": await database_reachable(deps.pool), "kafka": await deps.kafka.reachable()}
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.openapi = lambda: openapi_with_error_shape(app)
    return app


def openapi_with_error_shape(app: FastAPI) -> dict[str, Any]:
    """FastAPI's schema with our error responses: 400 (not 422) and the HubSpot Error body."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ErrorBody.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    for name, sub in components["Error"].pop("$defs", {}).items():
        components[name] = sub
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    for path, operations in schema.get("paths", {}).items():
        if path.startswith("/v3/"):  # SendGrid's API: its own error shape (routes/sendgrid.py)
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)  # a path parameter is any string
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status, description in ERROR_STATUSES.items():
                if status == "409" and not any(
                    p in path for p in ("/emails/", "/cancel", "/users", "/sending-domains", "/one-off-sends")
                ):
                    continue
                responses.setdefault(status, {"description": description, **error})
    app.openapi_schema = schema
    return schema
