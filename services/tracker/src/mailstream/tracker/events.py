"""The email events (HubSpot's legacy email events API) that consumed records make. Pure.

    MessageRendered      -> PROCESSED, one per recipient
    DeliveryAttempted    -> SENT + DELIVERED | DEFERRED | BOUNCE | DROPPED
    EngagementRecorded   -> OPEN | CLICK | SPAMREPORT
    UnsubscribeRecorded  -> STATUSCHANGE (unsubscribed)
    SuppressionChanged   -> UNBOUNCE when a bounce suppression is lifted

Ids are the records' event ids where they have one (a SENT event's id is the DELIVERED record's
event id, which the send status names as its eventId), else derived from the record, so that a
record read twice makes the same event once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EngagementKind,
    EngagementRecorded,
    MessageRendered,
    SuppressionAction,
    SuppressionChanged,
    UnsubscribeRecorded,
)

_NAMESPACE = uuid.UUID("5b7f3d56-3f0e-4c77-9a35-6f1f0d1e7c21")
ENGAGEMENT_TYPES = {
    EngagementKind.OPEN: "OPEN",
    EngagementKind.CLICK: "CLICK",
    EngagementKind.SPAM_REPORT: "SPAMREPORT",
}
DELIVERY_TYPES = {
    DeliveryOutcome.DELIVERED: "DELIVERED",
    DeliveryOutcome.DEFERRED: "DEFERRED",
    DeliveryOutcome.BOUNCED: "BOUNCE",
    DeliveryOutcome.DROPPED: "DROPPED",
}


@dataclass(frozen=True, slots=True)
class EmailEvent:
    id: uuid.UUID
    account_id: int
    type: str
    created: datetime
    recipient: str | None = None
    message_id: str | None = None
    email_id: int | None = None
    smtp_token_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def derived_id(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, ":".join(str(p) for p in parts))


def event_uuid(event_id: str) -> uuid.UUID:
    """A record's event id as the event's id (one that is not a UUID gets one derived from it)."""
    try:
        return uuid.UUID(event_id)
    except ValueError:
        return derived_id("event", event_id)


def _compact(detail: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in detail.items() if v is not None and v != ""}


def on_rendered(evt: MessageRendered) -> list[EmailEvent]:
    return [
        EmailEvent(
            derived_id(evt.message_id, "PROCESSED", recipient.lower()),
            evt.account_id,
            "PROCESSED",
            evt.rendered_at,
            recipient.lower(),
            evt.message_id,
            evt.email_id,
            evt.smtp_token_id,
        )
        for recipient in evt.recipients
    ]


def on_delivery(evt: DeliveryAttempted) -> list[EmailEvent]:
    kind = DELIVERY_TYPES[evt.outcome]
    detail = _compact(
        {
            "response": evt.smtp_reply,
            "status": str(evt.smtp_code) if evt.smtp_code is not None else None,
            "attempt": evt.attempt if evt.outcome is DeliveryOutcome.DEFERRED else None,
            "category": evt.bounce_class if evt.outcome is DeliveryOutcome.BOUNCED else None,
            "dropReason": evt.send_result if evt.outcome is DeliveryOutcome.DROPPED else None,
            "sendResult": evt.send_result,
            "smtpId": evt.remote_host,
            "sendingIp": evt.sending_ip,
        }
    )
    common = (evt.recipient.lower(), evt.message_id, evt.email_id, evt.smtp_token_id)
    if evt.outcome is not DeliveryOutcome.DELIVERED:
        return [EmailEvent(event_uuid(evt.event_id), evt.account_id, kind, evt.occurred_at, *common, detail)]
    sent = EmailEvent(event_uuid(evt.event_id), evt.account_id, "SENT", evt.occurred_at, *common, {})
    sent_by = {"sentBy": {"id": str(sent.id), "created": evt.occurred_at.isoformat()}}
    delivered = EmailEvent(
        derived_id(evt.event_id, "DELIVERED"), evt.account_id, kind, evt.occurred_at, *common, detail | sent_by
    )
    return [sent, delivered]


def on_engagement(evt: EngagementRecorded) -> EmailEvent:
    detail = _compact(
        {"url": evt.url, "userAgent": evt.user_agent, "ipAddress": evt.client_ip, "filteredEvent": evt.machine or None}
    )
    return EmailEvent(
        event_uuid(evt.event_id),
        evt.account_id,
        ENGAGEMENT_TYPES[evt.kind],
        evt.occurred_at,
        evt.recipient.lower(),
        evt.message_id,
        evt.email_id,
        evt.smtp_token_id,
        detail,
    )


def on_unsubscribe(evt: UnsubscribeRecorded) -> EmailEvent:
    return EmailEvent(
        event_uuid(evt.event_id),
        evt.account_id,
        "STATUSCHANGE",
        evt.occurred_at,
        evt.recipient.lower(),
        evt.message_id,
        detail={"subscriptions": [{"status": "UNSUBSCRIBED"}], "source": evt.reason.value},
    )


def on_suppression_change(evt: SuppressionChanged, removed: list[str]) -> EmailEvent | None:
    """UNBOUNCE when the change lifted a bounce suppression (what it lifted: the database says)."""
    if evt.action is not SuppressionAction.REMOVE or "BOUNCED" not in removed:
        return None
    return EmailEvent(
        event_uuid(evt.event_id),
        evt.account_id,
        "UNBOUNCE",
        evt.occurred_at,
        evt.address.lower(),
        detail=_compact({"note": evt.note, "requestedBy": evt.requested_by}),
    )
