"""Accepting a single send: decide, record, publish, and answer only once Kafka has it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

import asyncpg

from mailstream.gateway.adapters import store
from mailstream.gateway.models import SingleSendRequest
from mailstream.schemas import SendRequested, SendResult

Publish = Callable[[SendRequested], Awaitable[None]]


def iso(ts: datetime | None) -> str | None:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z") if ts else None


def status_view(row: dict[str, Any]) -> dict[str, Any]:
    """EmailSendStatusView from the gateway's request row and the tracker's outcome."""
    view: dict[str, Any] = {"statusId": row["status_id"], "requestedAt": iso(row["requested_at"])}
    if row.get("gateway_result"):
        view.update(
            status="COMPLETE",
            sendResult=row["gateway_result"],
            startedAt=iso(row["requested_at"]),
            completedAt=iso(row["gateway_completed_at"]),
        )
        return view
    view["status"] = row.get("status") or "PENDING"
    for key, column in (("startedAt", "started_at"), ("completedAt", "completed_at")):
        if row.get(column):
            view[key] = iso(row[column])
    if row.get("send_result"):
        view["sendResult"] = row["send_result"]
    if row.get("event_id"):
        view["eventId"] = {"id": row["event_id"], "created": iso(row["event_created"])}
    return view


def valid_address(address: str) -> bool:
    _, addr = parseaddr(address)
    local, _, domain = addr.rpartition("@")
    return bool(local) and "." in domain and addr == address.strip() and not any(c in address for c in "\r\n")


async def single_send(
    pool: asyncpg.Pool, publish: Publish, account_id: int, request: SingleSendRequest
) -> dict[str, Any]:
    msg = request.message
    now = datetime.now(UTC)
    status_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    email = await store.get_email(pool, account_id, request.emailId)

    # Problems with the email or the recipient end the send at once (200 + sendResult), as HubSpot does.
    rejection: SendResult | None = None
    if email is None or not email.single_send_api or email.state == "ARCHIVED":
        rejection = SendResult.MISSING_CONTENT
    elif not valid_address(msg.to):
        rejection = SendResult.INVALID_TO_ADDRESS

    async with pool.acquire() as conn, conn.transaction():
        inserted = await store.insert_send_request(
            conn,
            status_id=status_id,
            message_id=message_id,
            account_id=account_id,
            send_id=msg.sendId,
            email_id=request.emailId,
            recipient=msg.to,
            requested_at=now,
            send_result=rejection.value if rejection else None,
        )
        if not inserted:  # a repeated sendId: the first send's status, nothing sent again
            status_id = await store.find_send_by_send_id(conn, account_id, msg.sendId)
        elif rejection is None:
            # Published inside the transaction: if Kafka does not acknowledge, nothing is recorded.
            await publish(
                SendRequested(
                    message_id=message_id,
                    status_id=status_id,
                    account_id=account_id,
                    to=msg.to,
                    requested_at=now,
                    email_id=email.id,
                    email_version=email.current_version,
                    cc=tuple(msg.cc),
                    bcc=tuple(msg.bcc),
                    reply_to=tuple(msg.replyTo),
                    from_override=msg.from_,
                    send_id=msg.sendId,
                    contact_properties=dict(request.contactProperties),
                    custom_properties_json=json.dumps(request.customProperties),
                )
            )
    return status_view(await store.send_status(pool, account_id, status_id))
