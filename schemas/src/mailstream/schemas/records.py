"""Typed, immutable records: one per Avro schema, named in the past tense.

Services build and read these; Avro dicts exist only inside the codec.
Field names and order follow the .avsc files beside this module (a test checks it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class SendSource(StrEnum):
    API = "API"
    SMTP = "SMTP"


class SubscriptionType(StrEnum):
    TRANSACTIONAL = "TRANSACTIONAL"
    MARKETING = "MARKETING"


class DeliveryOutcome(StrEnum):
    DELIVERED = "DELIVERED"
    DEFERRED = "DEFERRED"
    BOUNCED = "BOUNCED"
    DROPPED = "DROPPED"


class EngagementKind(StrEnum):
    OPEN = "OPEN"
    CLICK = "CLICK"
    SPAM_REPORT = "SPAM_REPORT"


class SuppressionAction(StrEnum):
    ADD = "ADD"
    REMOVE = "REMOVE"


class UnsubscribeReason(StrEnum):
    LINK = "LINK"
    LIST_UNSUBSCRIBE = "LIST_UNSUBSCRIBE"
    SPAM_REPORT = "SPAM_REPORT"


@dataclass(frozen=True, slots=True)
class SendRequested:
    message_id: str
    status_id: str
    account_id: int
    to: str
    requested_at: datetime
    email_id: int | None = None
    email_version: int | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    from_override: str | None = None
    send_id: str | None = None
    contact_properties: dict[str, str] = field(default_factory=dict)
    custom_properties_json: str = "{}"
    source: SendSource = SendSource.API
    smtp_token_id: str | None = None
    campaign_id: str | None = None
    raw_message: bytes | None = None
    trigger_id: str | None = None
    one_off_send_id: str | None = None
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EmailRendered:
    message_id: str
    status_id: str
    account_id: int
    subscription_type: SubscriptionType
    mail_from: str
    recipients: tuple[str, ...]
    pool: str
    sending_ip: str
    sending_domain: str
    mime: bytes
    requested_at: datetime
    rendered_at: datetime
    email_id: int | None = None
    smtp_token_id: str | None = None
    attempt: int = 0
    first_attempt_at: datetime | None = None
    not_before: datetime | None = None
    tracked: bool = True
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageRendered:
    """The metadata of an EmailRendered, published beside it for the tracker (which then never
    reads the message bytes): the send is PROCESSING, and who the message goes to."""

    message_id: str
    status_id: str
    account_id: int
    recipients: tuple[str, ...]
    requested_at: datetime
    rendered_at: datetime
    email_id: int | None = None
    smtp_token_id: str | None = None
    trigger_id: str | None = None
    one_off_send_id: str | None = None
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, rendered: EmailRendered, *, trigger_id: str | None = None, one_off_send_id: str | None = None
    ) -> MessageRendered:
        return cls(
            message_id=rendered.message_id,
            status_id=rendered.status_id,
            account_id=rendered.account_id,
            recipients=rendered.recipients,
            requested_at=rendered.requested_at,
            rendered_at=rendered.rendered_at,
            email_id=rendered.email_id,
            smtp_token_id=rendered.smtp_token_id,
            trigger_id=trigger_id,
            one_off_send_id=one_off_send_id,
            custom_args=rendered.custom_args,
            categories=rendered.categories,
        )


@dataclass(frozen=True, slots=True)
class DeliveryAttempted:
    event_id: str
    message_id: str
    status_id: str
    account_id: int
    recipient: str
    outcome: DeliveryOutcome
    send_result: str
    occurred_at: datetime
    email_id: int | None = None
    smtp_token_id: str | None = None
    bounce_class: str | None = None
    smtp_code: int | None = None
    smtp_reply: str | None = None
    sending_ip: str | None = None
    remote_host: str | None = None
    attempt: int = 0
    started_at: datetime | None = None
    late_report: bool = False
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EngagementRecorded:
    event_id: str
    kind: EngagementKind
    message_id: str
    account_id: int
    recipient: str
    occurred_at: datetime
    email_id: int | None = None
    smtp_token_id: str | None = None
    url: str | None = None
    user_agent: str | None = None
    client_ip: str | None = None
    machine: bool = False
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UnsubscribeRecorded:
    event_id: str
    account_id: int
    recipient: str
    reason: UnsubscribeReason
    occurred_at: datetime
    message_id: str | None = None
    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RecordDeadLettered:
    event_id: str
    service: str
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    occurred_at: datetime
    key: bytes | None = None
    value: bytes | None = None


@dataclass(frozen=True, slots=True)
class SuppressionChanged:
    event_id: str
    account_id: int
    address: str
    action: SuppressionAction
    occurred_at: datetime
    reason: str | None = None
    note: str | None = None
    requested_by: str | None = None


@dataclass(frozen=True, slots=True)
class OneOffSendRequested:
    one_off_send_id: str
    account_id: int
    requested_at: datetime


def dead_lettered(
    *, service: str, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, reason: str
) -> RecordDeadLettered:
    """The dead-letter record for a consumed record that could not be decoded or processed."""
    return RecordDeadLettered(
        event_id=str(uuid.uuid4()),
        service=service,
        source_topic=topic,
        source_partition=partition,
        source_offset=offset,
        reason=reason[:2000],
        occurred_at=datetime.now(UTC),
        key=key,
        value=value,
    )


# Record class -> schema file; the codec and the topic registry both use it.
SCHEMA_FILES: dict[type, str] = {
    SendRequested: "send_requested.avsc",
    EmailRendered: "email_rendered.avsc",
    MessageRendered: "message_rendered.avsc",
    DeliveryAttempted: "delivery_attempted.avsc",
    EngagementRecorded: "engagement_recorded.avsc",
    UnsubscribeRecorded: "unsubscribe_recorded.avsc",
    RecordDeadLettered: "record_dead_lettered.avsc",
    SuppressionChanged: "suppression_changed.avsc",
    OneOffSendRequested: "one_off_send_requested.avsc",
}
