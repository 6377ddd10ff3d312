"""Accepting a send: decide, record, publish (or schedule), and answer only once Kafka has it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from mailstream.gateway import rules
from mailstream.gateway.adapters import contacts, sends
from mailstream.gateway.views import status_view
from mailstream.schemas import SendRequested, encode

Publish = Callable[[SendRequested], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SendCommand:
    """One send to one recipient, from the single-send API or a one-off send of an email."""

    email_id: int
    to: str
    require_single_send_api: bool
    from_: str | None = None
    send_id: str | None = None
    reply_to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    contact_properties: dict[str, str] = field(default_factory=dict)
    custom_properties: dict[str, Any] = field(default_factory=dict)
    send_at: datetime | None = None
    require_sending_domain: bool = False


async def accept_send(pool: asyncpg.Pool, publish: Publish, account_id: int, cmd: SendCommand) -> dict[str, Any]:
    """The EmailSendStatusView of the send (or of the first send with the same sendId).

    Problems with the email or the recipient end the send at once (200 + COMPLETE + sendResult).
    Otherwise the request row, the contact's properties and the publish (or the schedule row)
    happen in one transaction: if Kafka does not acknowledge, nothing is recorded.
    """
    async with pool.acquire() as conn:  # one connection for the whole send
        return await _accept_send(conn, publish, account_id, cmd)


# Namespace of the ids derived from a caller's sendId (uuid5).
SEND_ID_NAMESPACE = uuid.UUID("0b3c8f52-6f7e-4d0c-9a51-2f1b6f1d7e1a")


def send_ids(account_id: int, send_id: str | None) -> tuple[str, str]:
    """(statusId, message id) of a send. With a sendId they are derived from it: if Kafka stored
    a send but its acknowledgement was lost (the caller got 503 and retries with the same
    sendId), the retry publishes the same message id, which the sender delivers only once."""
    if send_id is None:
        return str(uuid.uuid4()), str(uuid.uuid4())
    return (
        str(uuid.uuid5(SEND_ID_NAMESPACE, f"status/{account_id}/{send_id}")),
        str(uuid.uuid5(SEND_ID_NAMESPACE, f"message/{account_id}/{send_id}")),
    )


async def _accept_send(conn: asyncpg.Connection, publish: Publish, account_id: int, cmd: SendCommand) -> dict[str, Any]:
    now = datetime.now(UTC)
    status_id, message_id = send_ids(account_id, cmd.send_id)
    email, facts, domain_ok = await contacts.send_facts(
        conn, account_id, cmd.email_id, cmd.to, rules.from_domain(cmd.from_)
    )
    refusal = rules.refusal(
        email=rules.EmailFacts(email.state, email.single_send_api, email.subscription_type) if email else None,
        require_single_send_api=cmd.require_single_send_api,
        to=cmd.to,
        from_=cmd.from_,
        recipient=facts,
        sending_domain_ok=domain_ok if cmd.require_sending_domain else None,
    )
    scheduled = cmd.send_at is not None and cmd.send_at > now and refusal is None

    async with conn.transaction():
        inserted = await sends.insert_send_request(
            conn,
            status_id=status_id,
            message_id=message_id,
            account_id=account_id,
            send_id=cmd.send_id,
            email_id=cmd.email_id,
            recipient=cmd.to,
            requested_at=now,
            send_result=refusal.value if refusal else None,
            send_at=cmd.send_at if scheduled else None,
        )
        if not inserted:  # a repeated sendId: the first send's status, nothing sent again
            first = await sends.find_send_by_send_id(conn, account_id, cmd.send_id)
            return status_view(await sends.send_status(conn, account_id, first))
        if cmd.contact_properties and rules.valid_address(cmd.to):
            await contacts.upsert_contact(conn, account_id, cmd.to, properties=cmd.contact_properties)
        if refusal is None:
            event = SendRequested(
                message_id=message_id,
                status_id=status_id,
                account_id=account_id,
                to=cmd.to,
                requested_at=now,
                email_id=email.id,
                email_version=email.current_version,
                cc=cmd.cc,
                bcc=cmd.bcc,
                reply_to=cmd.reply_to,
                from_override=cmd.from_,
                send_id=cmd.send_id,
                contact_properties=dict(cmd.contact_properties),
                custom_properties_json=json.dumps(cmd.custom_properties),
            )
            if scheduled:
                await sends.insert_scheduled(
                    conn, status_id=status_id, account_id=account_id, send_at=cmd.send_at, payload=encode(event)
                )
            else:
                # Inside the transaction: if Kafka does not acknowledge, the request row is rolled back.
                await publish(event)
    return status_view(
        {
            "status_id": status_id,
            "requested_at": now,
            "gateway_result": refusal.value if refusal else None,
            "gateway_completed_at": now,
        }
    )
