"""One-off sends of an email to many contacts: create (now or at sendAt), list, read with the
progress figures, cancel. The gateway records the send and publishes one OneOffSendRequested;
the fan-out process (mailstream.gateway.fanout) does the per-recipient work."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse

from mailstream.gateway import rules
from mailstream.gateway.adapters import one_off_sends as store
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import ApiError, conflict, invalid, not_found
from mailstream.gateway.one_off import (
    ADDRESSES,
    ALL_CONTACTS,
    FILTER,
    Audience,
    PropertyFilter,
    one_off_id,
    one_off_view,
)
from mailstream.gateway.one_off_models import AudienceIn, OneOffSendCreate, OneOffSendPage, OneOffSendView
from mailstream.schemas import OneOffSendRequested, encode
from mailstream.schemas.topics import ONE_OFF_SEND_REQUESTED

router = APIRouter(prefix="/mailstream/v1/one-off-sends", tags=["one-off sends"])


def audience_of(body: AudienceIn) -> tuple[Audience, list[str]]:
    if body.addresses is not None:
        for i, address in enumerate(body.addresses):
            if not rules.valid_address(address):
                raise invalid(f"audience.addresses[{i}]", f"{address!r} is not a valid email address")
        return Audience(ADDRESSES), body.addresses
    if body.allContacts:
        return Audience(ALL_CONTACTS), []
    filters = tuple(PropertyFilter(f.property, f.operator, f.value, tuple(f.values or ())) for f in body.filters or ())
    return Audience(FILTER, filters), []


async def _view(conn, account: int, row: dict[str, Any]) -> dict[str, Any]:
    return one_off_view(row, await store.tally(conn, account, str(row["id"])))


@router.post("", response_model=OneOffSendView, status_code=201, responses={200: {"model": OneOffSendView}})
async def create_one_off_send(
    body: OneOffSendCreate,
    account: Account,
    deps: Deps,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key", max_length=255),
) -> JSONResponse:
    """Send an email (draft or published, not archived) once to many recipients: a list of
    addresses, all contacts, or the contacts whose properties match every filter; now or at
    sendAt. Answers 201 with the send (state QUEUED or SCHEDULED) once it is recorded and its
    OneOffSendRequested is in Kafka; a repeated idempotency key answers 200 with the first send."""
    key = body.idempotencyKey or idempotency_key
    if body.idempotencyKey and idempotency_key and body.idempotencyKey != idempotency_key:
        raise invalid("idempotencyKey", "differs from the Idempotency-Key header")
    audience, addresses = audience_of(body.audience)
    if key is not None and (existing := await store.by_idempotency_key(deps.pool, account, key)):
        return JSONResponse(await _view(deps.pool, account, existing), status_code=200)
    email = await store.email_version_facts(deps.pool, account, body.emailId)
    if email is None:
        raise not_found(f"Email {body.emailId}")
    if email["state"] == "ARCHIVED":
        raise conflict(f"Email {body.emailId} is archived: clone it to send it")
    now = datetime.now(UTC)
    scheduled = body.sendAt is not None and body.sendAt > now
    one_off_send_id = one_off_id(account, key)
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await store.insert_one_off(
            conn,
            one_off_send_id=one_off_send_id,
            account_id=account,
            idempotency_key=key,
            email_id=body.emailId,
            email_version=email["current_version"],
            audience=audience,
            custom_properties=body.customProperties,
            state="SCHEDULED" if scheduled else "QUEUED",
            send_at=body.sendAt,
            addresses=addresses,
        )
        if row is None:  # the same key, concurrently: the first one stands
            existing = await store.get_one_off(conn, account, one_off_send_id)
            if existing is None:
                raise ApiError(409, "CONFLICT", "A one-off send with this id exists in another account")
            return JSONResponse(await _view(conn, account, existing), status_code=200)
        if not scheduled:
            # Inside the transaction: if Kafka does not acknowledge, nothing is recorded (503).
            record = OneOffSendRequested(one_off_send_id=one_off_send_id, account_id=account, requested_at=now)
            await deps.kafka.send(ONE_OFF_SEND_REQUESTED.name, encode(record), key=one_off_send_id.encode())
        view = await _view(conn, account, row)
    return JSONResponse(view, status_code=201)


@router.get("", response_model=OneOffSendPage)
async def list_one_off_sends(
    request: Request,
    account: Account,
    deps: Deps,
    limit: int = Query(default=20, ge=1, le=100),
    after: str | None = Query(default=None, description="the id of the last send of the previous page"),
) -> dict[str, Any]:
    """The account's one-off sends, newest first, with their progress."""
    after_id = _uuid(after, "after") if after else None
    rows = await store.list_one_offs(deps.pool, account, limit=limit, after=after_id)
    body: dict[str, Any] = {"results": [await _view(deps.pool, account, r) for r in rows[:limit]]}
    if len(rows) > limit:
        last = str(rows[limit - 1]["id"])
        body["paging"] = {"next": {"after": last, "link": str(request.url.include_query_params(after=last))}}
    return body


@router.get("/{one_off_send_id}", response_model=OneOffSendView)
async def get_one_off_send(one_off_send_id: str, account: Account, deps: Deps) -> dict[str, Any]:
    """The send and its progress: targeted, accepted (= sent + failed + pending), skipped by reason."""
    row = await store.get_one_off(deps.pool, account, _id(one_off_send_id))
    if row is None:
        raise not_found(f"One-off send {one_off_send_id}")
    return await _view(deps.pool, account, row)


@router.post("/{one_off_send_id}/cancel", response_model=OneOffSendView)
async def cancel_one_off_send(one_off_send_id: str, account: Account, deps: Deps) -> dict[str, Any]:
    """Cancel a one-off send before its fan-out is done: the recipients not fanned out yet are
    skipped (skipped.byReason.canceled); those already accepted go ahead. 409 once it is done."""
    async with deps.pool.acquire() as conn, conn.transaction():
        row = await store.cancel(conn, account, _id(one_off_send_id))
        if row is None:
            raise not_found(f"One-off send {one_off_send_id}")
        if row["state"] == "DONE":
            raise conflict(f"One-off send {one_off_send_id} is DONE: every recipient was fanned out already")
        return await _view(conn, account, row)


def _id(value: str) -> str:
    try:
        return _uuid(value, "id")
    except ApiError:
        raise not_found(f"One-off send {value}") from None


def _uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise invalid(field, f"{value!r} is not a one-off send id") from None
