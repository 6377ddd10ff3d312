"""SendRequested -> EmailRendered, or DeliveryAttempted(DROPPED) with the sendResult that ended it.

A request that cannot be processed at all (corrupt properties, an unparseable SMTP message)
raises `Unprocessable`: the agent dead-letters the record and ends the send with its result.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Protocol

from mailstream.renderer.mime import Headers, build_mime, format_mailbox, valid_address
from mailstream.renderer.pools import Pool
from mailstream.renderer.render import CompiledEmail, RenderFailed, parse_custom, render
from mailstream.renderer.rules import RecipientStatus, choose_pool, recipient_block
from mailstream.renderer.tracking import Recipient, Tracker
from mailstream.renderer.whole import CorruptMessage, prepare_whole
from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EmailRendered,
    SendRequested,
    SendResult,
    SubscriptionType,
)

LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"  # RFC 8058


@dataclass(frozen=True, slots=True)
class EmailVersion:
    email_id: int
    version: int
    from_name: str
    from_email: str
    reply_to: tuple[str, ...]
    subscription_type: SubscriptionType
    tracking: bool
    compiled: CompiledEmail


class EmailStore(Protocol):
    async def load(self, account_id: int, email_id: int, version: int) -> EmailVersion | None: ...


class RecipientStore(Protocol):
    async def status(self, account_id: int, address: str) -> RecipientStatus: ...


class AccountPools(Protocol):
    async def dedicated(self, account_id: int) -> str | None: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Ports:
    emails: EmailStore
    recipients: RecipientStore
    account_pools: AccountPools
    pools: dict[str, Pool]
    tracker: Tracker
    clock: Clock = utcnow


class Unprocessable(Exception):
    def __init__(self, result: SendResult, reason: str):
        super().__init__(reason)
        self.result, self.reason = result, reason


def dropped(req: SendRequested, result: SendResult, reason: str, *, now: datetime | None = None) -> DeliveryAttempted:
    return DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=req.message_id,
        status_id=req.status_id,
        account_id=req.account_id,
        email_id=req.email_id,
        smtp_token_id=req.smtp_token_id,
        recipient=req.to,
        outcome=DeliveryOutcome.DROPPED,
        send_result=result.value,
        smtp_reply=reason[:1000],
        occurred_at=now or utcnow(),
    )


def _who(req: SendRequested) -> Recipient:
    return Recipient(req.message_id, req.account_id, req.to, req.email_id, req.smtp_token_id)


def _bad_recipient(req: SendRequested) -> str | None:
    for address in (req.to, *req.cc, *req.bcc):
        if not valid_address(address):
            return address
    return None


async def _pool(subscription_type: SubscriptionType, req: SendRequested, ports: Ports) -> Pool:
    dedicated = None
    if subscription_type is SubscriptionType.TRANSACTIONAL:
        dedicated = await ports.account_pools.dedicated(req.account_id)
    return choose_pool(subscription_type, dedicated, ports.pools)


async def render_send(req: SendRequested, ports: Ports) -> EmailRendered | DeliveryAttempted:
    if (bad := _bad_recipient(req)) is not None:
        return dropped(req, SendResult.INVALID_TO_ADDRESS, f"invalid recipient address {bad!r}")
    if req.raw_message is not None:
        return await _render_whole(req, ports)
    if req.email_id is None or req.email_version is None:
        return dropped(req, SendResult.MISSING_CONTENT, "no email to render")
    try:
        email = await ports.emails.load(req.account_id, req.email_id, req.email_version)
    except RenderFailed as exc:  # the version's templates do not compile
        return dropped(req, exc.result, exc.reason)
    if email is None:
        return dropped(req, SendResult.MISSING_CONTENT, f"email {req.email_id} v{req.email_version} not found")
    status = await ports.recipients.status(req.account_id, req.to.lower())
    if (blocked := recipient_block(email.subscription_type, status)) is not None:
        return dropped(req, blocked, f"{email.subscription_type} email not sent to this contact: {blocked}")
    try:
        custom = parse_custom(req.custom_properties_json)
    except ValueError as exc:
        raise Unprocessable(SendResult.CORRUPT_INPUT, f"customProperties is not JSON: {exc}") from exc
    if not isinstance(custom, dict):
        raise Unprocessable(SendResult.CORRUPT_INPUT, "customProperties is not an object")

    who = _who(req)
    marketing = email.subscription_type is SubscriptionType.MARKETING
    unsubscribe = ports.tracker.unsubscribe_url(who) if marketing else ""
    try:
        rendered = render(
            email.compiled,
            {**status.properties, **req.contact_properties},
            custom,
            from_name=email.from_name,
            unsubscribe_link=unsubscribe,
        )
    except RenderFailed as exc:
        return dropped(req, exc.result, exc.reason)

    from_name, from_address = rendered.from_name, email.from_email
    if req.from_override:
        from_name, from_address = parseaddr(req.from_override)
    if not valid_address(from_address):
        return dropped(req, SendResult.INVALID_FROM_ADDRESS, f"invalid From address {from_address!r}")
    reply_to = req.reply_to or email.reply_to
    if any(not valid_address(a) for a in reply_to):
        return dropped(req, SendResult.VALIDATION_FAILED, f"invalid Reply-To {reply_to!r}")
    sending_domain = from_address.rpartition("@")[2].lower()
    extra: tuple[tuple[str, str], ...] = ()
    if marketing:
        extra = (("List-Unsubscribe", f"<{unsubscribe}>"), ("List-Unsubscribe-Post", LIST_UNSUBSCRIBE_POST))
    html = ports.tracker.track_html(rendered.html, who) if email.tracking else rendered.html
    now = ports.clock()
    mime = build_mime(
        Headers(
            message_id=req.message_id,
            sending_domain=sending_domain,
            from_header=format_mailbox(from_name, from_address),
            to=req.to,
            cc=req.cc,
            reply_to=reply_to,
            subject=rendered.subject,
            date=now,
            extra=extra,
        ),
        html=html,
        text=rendered.text,
    )
    pool = await _pool(email.subscription_type, req, ports)
    return _rendered(req, email.subscription_type, from_address, pool, sending_domain, mime, now, email.tracking)


async def _render_whole(req: SendRequested, ports: Ports) -> EmailRendered | DeliveryAttempted:
    """A message from the SMTP ingress: TRANSACTIONAL, tracked, headers kept."""
    assert req.raw_message is not None
    who = _who(req)
    now = ports.clock()
    envelope_from = parseaddr(req.from_override)[1] if req.from_override else ""
    try:
        whole = prepare_whole(
            req.raw_message,
            message_id=req.message_id,
            sending_domain=envelope_from.rpartition("@")[2].lower() or "localhost",
            date=now,
            track=lambda html: ports.tracker.track_html(html, who),
        )
    except CorruptMessage as exc:
        raise Unprocessable(SendResult.CORRUPT_INPUT, str(exc)) from exc
    mail_from = envelope_from or whole.from_address
    if not valid_address(mail_from):
        return dropped(req, SendResult.INVALID_FROM_ADDRESS, f"invalid From address {mail_from!r}")
    sending_domain = mail_from.rpartition("@")[2].lower()
    subscription_type = SubscriptionType.TRANSACTIONAL
    pool = await _pool(subscription_type, req, ports)
    return _rendered(req, subscription_type, mail_from, pool, sending_domain, whole.mime, now, True)


def _rendered(
    req: SendRequested,
    subscription_type: SubscriptionType,
    mail_from: str,
    pool: Pool,
    sending_domain: str,
    mime: bytes,
    now: datetime,
    tracked: bool,
) -> EmailRendered:
    return EmailRendered(
        message_id=req.message_id,
        status_id=req.status_id,
        account_id=req.account_id,
        email_id=req.email_id,
        smtp_token_id=req.smtp_token_id,
        subscription_type=subscription_type,
        mail_from=mail_from,
        recipients=(req.to, *req.cc, *req.bcc),
        pool=pool.name,
        sending_ip=pool.choose(),
        sending_domain=sending_domain,
        mime=mime,
        requested_at=req.requested_at,
        rendered_at=now,
        tracked=tracked,
    )
