"""SendGrid's batches: `POST /v3/mail/batch`, `GET /v3/mail/batch/{batch_id}` and the Cancel
Scheduled Sends API (`/v3/user/scheduled_sends`), with the Mail Send's auth (a mailstream API key
with the send scope) and SendGrid's answers and error shape. The rules: sendgrid/batches.py; what
a status does to the scheduled sends: adapters/batches.py and the scheduler (docs/sendgrid.md#batches)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import asyncpg
import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from mailstream.core.db import DATABASE_DOWN
from mailstream.gateway.adapters import batches as store
from mailstream.gateway.deps import Deps
from mailstream.gateway.routes.sendgrid import ERRORS_SCHEMA, caller
from mailstream.gateway.sendgrid import batches
from mailstream.gateway.sendgrid.errors import SendGridError, bad_request, error, response

log = logging.getLogger("mailstream.gateway.sendgrid")
router = APIRouter(tags=["sendgrid"])
STATUS_CHANGES = Counter("mailstream_gateway_sendgrid_batch_statuses_total", "SendGrid batch status changes", ["to"])
MAX_BODY_BYTES = 64 * 1024

_ERROR = {"content": {"application/json": {"schema": ERRORS_SCHEMA}}}
_BATCH = {"type": "object", "properties": {"batch_id": {"type": "string"}}, "required": ["batch_id"]}
_STATUS = {
    "type": "object",
    "properties": {"batch_id": {"type": "string"}, "status": {"type": "string", "enum": list(batches.STATUSES)}},
    "required": ["batch_id", "status"],
}
_LIST = {"type": "array", "items": _STATUS}
_COMMON: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid API key", **_ERROR},
    403: {"description": "The API key lacks the send scope", **_ERROR},
    429: {"description": "The API key's request limit is reached", **_ERROR},
    503: {"description": "PostgreSQL unavailable: nothing was changed", **_ERROR},
}
_NOT_FOUND = {404: {"description": "No such batch of the account, or it has no status", **_ERROR}}
_TOO_LARGE = {413: {"description": f"The body is larger than {MAX_BODY_BYTES} bytes", **_ERROR}}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _body(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "description": description, **_json(schema)}}


async def _answer(work: Awaitable[Response]) -> Response:
    try:
        return await work
    except SendGridError as exc:
        return response(exc)
    except (*DATABASE_DOWN, asyncpg.PostgresConnectionError) as exc:
        log.warning("database unavailable", extra={"fields": {"error": repr(exc)}})
        message = "The database is unavailable: nothing was changed; retry later"
        return response(SendGridError(503, [error(None, message)], headers={"Retry-After": "1"}))


async def _read(request: Request) -> Any:
    too_large = SendGridError(413, [error(None, f"The request body is larger than {MAX_BODY_BYTES} bytes")])
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise too_large
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(None, f"The request body is not valid JSON: {exc}") from exc


# ---- batch ids ---------------------------------------------------------------------------------


@router.post(
    "/v3/mail/batch",
    status_code=201,
    response_class=JSONResponse,
    responses={201: {"description": "A new batch id of the account", **_json(_BATCH)}, **_COMMON},
)
async def create_batch(request: Request, deps: Deps) -> Response:
    """A new batch id: give it as a Mail Send's batch_id to pause or cancel its scheduled sends."""

    async def work() -> Response:
        account_id = await caller(request, deps)
        batch_id = batches.new_batch_id()
        await store.create(deps.pool, account_id, batch_id)
        return JSONResponse({"batch_id": batch_id}, status_code=201)

    return await _answer(work())


@router.get(
    "/v3/mail/batch/{batch_id}",
    response_class=JSONResponse,
    responses={
        200: {"description": "The batch id is the account's", **_json(_BATCH)},
        400: {"description": "invalid batch id: not a batch of the account", **_ERROR},
        **_COMMON,
    },
)
async def validate_batch(batch_id: str, request: Request, deps: Deps) -> Response:
    """Whether the batch id is one of the account's (whether or not a send has it)."""

    async def work() -> Response:
        account_id = await caller(request, deps)
        if not batches.well_formed(batch_id) or not await store.exists(deps.pool, account_id, batch_id):
            raise batches.invalid()
        return JSONResponse({"batch_id": batch_id})

    return await _answer(work())


# ---- statuses: the Cancel Scheduled Sends API --------------------------------------------------


@router.post(
    "/v3/user/scheduled_sends",
    status_code=201,
    response_class=JSONResponse,
    responses={
        201: {"description": "The batch is paused or canceled", **_json(_STATUS)},
        400: {"description": "Unknown batch, a bad status, or the batch already has one (use PATCH)", **_ERROR},
        **_TOO_LARGE,
        **_COMMON,
    },
    openapi_extra=_body("{batch_id, status}: status pause or cancel", _STATUS),
)
async def set_batch_status(request: Request, deps: Deps) -> Response:
    """Pause or cancel the batch's scheduled sends (a batch without a status yet)."""

    async def work() -> Response:
        account_id = await caller(request, deps)
        batch_id, status = batches.read_status_body(await _read(request), with_batch_id=True)
        assert batch_id is not None
        if not batches.well_formed(batch_id):
            raise batches.invalid("batch_id")
        async with deps.pool.acquire() as conn, conn.transaction():
            batches.check_create(*await store.status_for_change(conn, account_id, batch_id))
            await store.set_status(conn, account_id, batch_id, status)
        STATUS_CHANGES.labels(status).inc()
        return JSONResponse({"batch_id": batch_id, "status": status}, status_code=201)

    return await _answer(work())


@router.get(
    "/v3/user/scheduled_sends",
    response_class=JSONResponse,
    responses={200: {"description": "The account's paused and canceled batches", **_json(_LIST)}, **_COMMON},
)
async def list_batch_statuses(request: Request, deps: Deps) -> Response:
    """{batch_id, status} of every batch of the account that is paused or canceled."""

    async def work() -> Response:
        account_id = await caller(request, deps)
        return JSONResponse(await store.statuses(deps.pool, account_id))

    return await _answer(work())


@router.get(
    "/v3/user/scheduled_sends/{batch_id}",
    response_class=JSONResponse,
    responses={200: {"description": "[{batch_id, status}]", **_json(_LIST)}, **_NOT_FOUND, **_COMMON},
)
async def get_batch_status(batch_id: str, request: Request, deps: Deps) -> Response:
    """The batch's status, as a list of one (SendGrid's shape); 404 if it has none."""

    async def work() -> Response:
        account_id = await caller(request, deps)
        found = await store.statuses(deps.pool, account_id, batch_id) if batches.well_formed(batch_id) else []
        if not found:
            raise batches.not_found()
        return JSONResponse(found)

    return await _answer(work())


@router.patch(
    "/v3/user/scheduled_sends/{batch_id}",
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "The status is changed"},
        400: {"description": "A bad status", **_ERROR},
        **_NOT_FOUND,
        **_TOO_LARGE,
        **_COMMON,
    },
    openapi_extra=_body("{status}: pause or cancel", {"type": "object", "required": ["status"]}),
)
async def change_batch_status(batch_id: str, request: Request, deps: Deps) -> Response:
    """Change a paused batch to canceled or back (a batch that has a status)."""

    async def work() -> Response:
        account_id = await caller(request, deps)
        _, status = batches.read_status_body(await _read(request), with_batch_id=False)
        await _change(deps, account_id, batch_id, status)
        return Response(status_code=204)

    return await _answer(work())


@router.delete(
    "/v3/user/scheduled_sends/{batch_id}",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "The pause or cancel is removed"}, **_NOT_FOUND, **_COMMON},
)
async def remove_batch_status(batch_id: str, request: Request, deps: Deps) -> Response:
    """Remove the pause or cancel: the batch's sends go out when due (at once if past due)."""

    async def work() -> Response:
        account_id = await caller(request, deps)
        await _change(deps, account_id, batch_id, None)
        return Response(status_code=204)

    return await _answer(work())


async def _change(deps: Deps, account_id: int, batch_id: str, status: str | None) -> None:
    if not batches.well_formed(batch_id):
        raise batches.not_found()
    async with deps.pool.acquire() as conn, conn.transaction():
        batches.check_change(*await store.status_for_change(conn, account_id, batch_id))
        expired = await store.set_status(conn, account_id, batch_id, status)
    STATUS_CHANGES.labels(status or "none").inc()
    if expired:
        log.info("paused sends expired", extra={"fields": {"batch_id": batch_id, "count": expired}})
