"""Engagement and unsubscribe events from verified links and feedback reports. Pure."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from mailstream.schemas import EngagementKind, EngagementRecorded, UnsubscribeReason, UnsubscribeRecorded
from mailstream.schemas.links import LinkKind, TrackedLink


@dataclass(frozen=True, slots=True)
class TrackedMessage:
    """What the tracker keeps of a rendered message, to attribute feedback reports."""

    message_id: str
    account_id: int
    recipients: tuple[str, ...]
    email_id: int | None = None
    smtp_token_id: str | None = None
    trigger_id: str | None = None  # the automation trigger rule that made the send (issue 16)
    custom_args: dict[str, str] = field(default_factory=dict)  # the send's (SendGrid API), onto its reports
    categories: tuple[str, ...] = ()  # the same

    def recipient_for(self, reported: str | None) -> str:
        """The complaining recipient: the one the report names if it is ours, else the primary one."""
        if reported and reported.lower() in (r.lower() for r in self.recipients):
            return reported.lower()
        return self.recipients[0].lower()


@dataclass(frozen=True, slots=True)
class Annotation:
    """A message's custom_args and categories (SendGrid's), looked up for the events of its
    annotated links (TrackedLink.annotated)."""

    custom_args: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


def from_link(
    link: TrackedLink,
    *,
    occurred_at: datetime,
    user_agent: str | None,
    client_ip: str | None,
    machine: bool,
    annotation: Annotation | None = None,
) -> EngagementRecorded:
    """An open or click; `annotation` is the message's, when its link is annotated and it was found."""
    return EngagementRecorded(
        event_id=str(uuid.uuid4()),
        kind=EngagementKind.OPEN if link.kind is LinkKind.OPEN else EngagementKind.CLICK,
        message_id=link.message_id,
        account_id=link.account_id,
        recipient=link.recipient,
        occurred_at=occurred_at,
        email_id=link.email_id,
        smtp_token_id=link.smtp_token_id,
        url=link.url,
        user_agent=(user_agent or None) and user_agent[:1000],
        client_ip=client_ip,
        machine=machine,
        custom_args=annotation.custom_args if annotation is not None else {},
        categories=annotation.categories if annotation is not None else (),
    )


def unsubscribe(
    link: TrackedLink, *, occurred_at: datetime, one_click: bool, annotation: Annotation | None = None
) -> UnsubscribeRecorded:
    """A link or one-click unsubscribe; `annotation` as for from_link."""
    return UnsubscribeRecorded(
        event_id=str(uuid.uuid4()),
        account_id=link.account_id,
        recipient=link.recipient.lower(),
        reason=UnsubscribeReason.LIST_UNSUBSCRIBE if one_click else UnsubscribeReason.LINK,
        occurred_at=occurred_at,
        message_id=link.message_id,
        custom_args=annotation.custom_args if annotation is not None else {},
        categories=annotation.categories if annotation is not None else (),
    )


def spam_report(
    msg: TrackedMessage, *, recipient: str, occurred_at: datetime, reporter: str | None
) -> tuple[EngagementRecorded, UnsubscribeRecorded]:
    """Every spam report is one SPAM_REPORT engagement event and one unsubscribe for that contact."""
    report = EngagementRecorded(
        event_id=str(uuid.uuid4()),
        kind=EngagementKind.SPAM_REPORT,
        message_id=msg.message_id,
        account_id=msg.account_id,
        recipient=recipient,
        occurred_at=occurred_at,
        email_id=msg.email_id,
        smtp_token_id=msg.smtp_token_id,
        user_agent=reporter,
        custom_args=msg.custom_args,
        categories=msg.categories,
    )
    unsub = UnsubscribeRecorded(
        event_id=str(uuid.uuid4()),
        account_id=msg.account_id,
        recipient=recipient,
        reason=UnsubscribeReason.SPAM_REPORT,
        occurred_at=occurred_at,
        message_id=msg.message_id,
        custom_args=msg.custom_args,
        categories=msg.categories,
    )
    return report, unsub


def unsubscribe_key(account_id: int, recipient: str) -> bytes:
    """email.unsubscribe's key: account id and recipient address."""
    return f"{account_id}:{recipient.lower()}".encode()
