"""The single-send API (HubSpot paths), one-off sends of any email, statuses and cancel."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Response
from prometheus_client import Counter

from mailstream.gateway import handlers
from mailstream.gateway.adapters import sends
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import conflict, not_found
from mailstream.gateway.models import EmailSendStatusView, ObjectId, OneOffSendRequest, SingleSendRequest
from mailstream.gateway.views import status_view

router = APIRouter()
SENDS_ANSWERED = Counter("mailstream_gateway_sends_total", "Sends answered", ["result"])
STATUS = {"response_model": EmailSendStatusView, "response_model_exclude_none": True}


def _count(view: dict[str, Any]) -> Response:
    """The view as JSON, straight: it is built to the EmailSendStatusView schema (a unit test
    checks it), so FastAPI's response validation is skipped on the hot path."""
    return Response(counted(view), media_type="application/json")


def counted(view: dict[str, Any]) -> bytes:
    SENDS_ANSWERED.labels(view.get("sendResult") or view["status"]).inc()
    return orjson.dumps(view)


@router.post("/marketing/v3/transactional/single-email/send", tags=["single send"], **STATUS)
@router.post("/marketing/transactional/2026-03/single-email/send", tags=["single send"], include_in_schema=False)
async def single_send(body: SingleSendRequest, account: Account, deps: Deps) -> Response:
    """Send a converted email to one recipient. Problems with the email or recipient answer 200
    with status COMPLETE and a sendResult; the 200 comes only after Kafka acknowledged the send."""
    return _count(await deps.acceptor.send(account, single_send_command(body, deps.require_sending_domain)))


def single_send_command(body: SingleSendRequest, require_sending_domain: bool) -> handlers.SendCommand:
    msg = body.message
    return handlers.SendCommand(
        email_id=body.emailId,
        to=msg.to,
        require_single_send_api=True,
        from_=msg.from_,
        send_id=msg.sendId,
        reply_to=tuple(msg.replyTo),
        cc=tuple(msg.cc),
        bcc=tuple(msg.bcc),
        contact_properties=body.contactProperties,
        custom_properties=body.customProperties,
        send_at=body.sendAt,
        require_sending_domain=require_sending_domain,
    )


@router.post("/mailstream/v1/emails/{email_id}/send", tags=["emails"], **STATUS)
async def one_off_send(email_id: ObjectId, body: OneOffSendRequest, account: Account, deps: Deps) -> Response:
    """Send (or schedule with sendAt) any email of the account once, to one contact."""
    cmd = handlers.SendCommand(
        email_id=email_id,
        to=body.to,
        require_single_send_api=False,
        from_=body.from_,
        send_id=body.sendId,
        contact_properties=body.contactProperties,
        custom_properties=body.customProperties,
        send_at=body.sendAt,
        require_sending_domain=deps.require_sending_domain,
    )
    return _count(await deps.acceptor.send(account, cmd))


def _status_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise not_found(f"Send status {value}") from None


@router.get("/marketing/v3/email/send-statuses/{status_id}", tags=["single send"], **STATUS)
async def send_status(status_id: str, account: Account, deps: Deps) -> dict[str, Any]:
    row = await sends.send_status(deps.pool, account, _status_id(status_id))
    if row is None:
        raise not_found(f"Send status {status_id}")
    return status_view(row)


@router.post("/mailstream/v1/sends/{status_id}/cancel", tags=["single send"], **STATUS)
async def cancel_send(status_id: str, account: Account, deps: Deps) -> dict[str, Any]:
    """Cancel a scheduled send that has not been released; its status becomes CANCELED."""
    status_id = _status_id(status_id)
    async with deps.pool.acquire() as conn, conn.transaction():
        await sends.cancel_scheduled(conn, account, status_id)
        row = await sends.send_status(conn, account, status_id)
    if row is None:
        raise not_found(f"Send status {status_id}")
    view = status_view(row)
    if view["status"] != "CANCELED":
        raise conflict(f"Send {status_id} is {view['status']}: only a scheduled send not yet released can be canceled")
    return view
