"""Kafka records -> webhook events (pure): the JSON objects a webhook POST carries, an array of them.

Each event has the record's event_id as its `event_id` (the receiver's de-duplication key; a replay
sends the same ids), an `event` type from EVENT_TYPES, the time as `timestamp` (Unix seconds, as
SendGrid's Event Webhook has it) and `occurred_at` (ISO 8601), and the fields of its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailstream.schemas import DeliveryAttempted, EngagementRecorded, UnsubscribeRecorded
from mailstream.schemas.records import DeliveryOutcome, EngagementKind

DELIVERED, DEFERRED, BOUNCED, DROPPED = "delivered", "deferred", "bounced", "dropped"
OPENED, CLICKED, SPAM_REPORT, UNSUBSCRIBED = "opened", "clicked", "spam_report", "unsubscribed"
EVENT_TYPES: tuple[str, ...] = (DELIVERED, DEFERRED, BOUNCED, DROPPED, OPENED, CLICKED, SPAM_REPORT, UNSUBSCRIBED)
TEST = "test"  # the "send test event" action's event, never from a topic

BY_OUTCOME = {
    DeliveryOutcome.DELIVERED: DELIVERED,
    DeliveryOutcome.DEFERRED: DEFERRED,
    DeliveryOutcome.BOUNCED: BOUNCED,
    DeliveryOutcome.DROPPED: DROPPED,
}
BY_KIND = {EngagementKind.OPEN: OPENED, EngagementKind.CLICK: CLICKED, EngagementKind.SPAM_REPORT: SPAM_REPORT}


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    event_id: str
    account_id: int
    type: str
    occurred_at: datetime
    payload: dict[str, Any]


def _common(event_id: str, kind: str, occurred_at: datetime, account_id: int, recipient: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event": kind,
        "timestamp": int(occurred_at.timestamp()),
        "occurred_at": occurred_at.isoformat().replace("+00:00", "Z"),
        "account_id": account_id,
        "email": recipient,
    }


def _given(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def event_of(record: object) -> WebhookEvent | None:
    """The webhook event of a decoded record, or None for a record no webhook carries."""
    if isinstance(record, DeliveryAttempted):
        kind = BY_OUTCOME[record.outcome]
        payload = _common(record.event_id, kind, record.occurred_at, record.account_id, record.recipient)
        payload |= _given(
            message_id=record.message_id,
            status_id=record.status_id,
            email_id=record.email_id,
            smtp_token_id=record.smtp_token_id,
            send_result=record.send_result,
            attempt=record.attempt,
            bounce_class=record.bounce_class,
            smtp_code=record.smtp_code,
            response=record.smtp_reply,
            sending_ip=record.sending_ip,
            remote_host=record.remote_host,
        )
        payload["custom_args"] = dict(record.custom_args)
        payload["category"] = list(record.categories)
    elif isinstance(record, EngagementRecorded):
        kind = BY_KIND[record.kind]
        payload = _common(record.event_id, kind, record.occurred_at, record.account_id, record.recipient)
        payload |= _given(
            message_id=record.message_id,
            email_id=record.email_id,
            smtp_token_id=record.smtp_token_id,
            url=record.url,
            useragent=record.user_agent,
            ip=record.client_ip,
        )
        payload["machine"] = record.machine
        payload["custom_args"] = dict(record.custom_args)
        payload["category"] = list(record.categories)
    elif isinstance(record, UnsubscribeRecorded):
        kind = UNSUBSCRIBED
        payload = _common(record.event_id, kind, record.occurred_at, record.account_id, record.recipient)
        payload |= _given(message_id=record.message_id, reason=str(record.reason))
        payload["custom_args"] = dict(record.custom_args)
        payload["category"] = list(record.categories)
    else:
        return None
    return WebhookEvent(record.event_id, record.account_id, kind, record.occurred_at, payload)


def test_event(event_id: str, account_id: int, now: datetime) -> dict[str, Any]:
    """The payload of the "send test event" action: a `test` event with made-up message fields."""
    payload = _common(event_id, TEST, now, account_id, "test@example.com")
    payload |= {"message_id": "00000000-0000-0000-0000-000000000000", "custom_args": {}, "category": []}
    return payload
