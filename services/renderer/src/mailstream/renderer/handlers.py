"""SendRequested -> EmailRendered, or DeliveryAttempted(DROPPED) with the sendResult that ended it.

A batch's database facts are gathered first (`gather_facts`: one lookup per kind), then each
request goes through ordered named steps, pure functions of the request and the facts:

    STEPS = (check_addresses, load_email, check_recipient, render_content, check_sender, build_message)

A step returns a DROPPED outcome to stop, or None to go on; the message then leaves from its
pool's IP (`choose_ip`). A message that arrives whole over SMTP takes `render_whole` instead.
A request that cannot be processed at all (corrupt properties, an unparseable SMTP message)
raises `Unprocessable`: the caller dead-letters the record and ends the send with its result.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr

from mailstream.core.retry import MailstreamError
from mailstream.renderer.built import prepare_built
from mailstream.renderer.mime import Headers, build_mime, format_mailbox, valid_address
from mailstream.renderer.pools import Pool
from mailstream.renderer.ports import EmailKey, EmailVersion, Facts, Ports, RecipientKey
from mailstream.renderer.render import Rendered, RenderFailed, parse_custom, render
from mailstream.renderer.rules import RecipientStatus, choose_pool, recipient_block
from mailstream.renderer.tracking import Recipient
from mailstream.renderer.whole import CorruptMessage, prepare_whole
from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EmailRendered,
    SendRequested,
    SendResult,
    SendSource,
    SubscriptionType,
)

LIST_UNSUBSCRIBE_POST = "List-Unsubscribe=One-Click"  # RFC 8058
Outcome = EmailRendered | DeliveryAttempted


class Unprocessable(MailstreamError):
    """The send request's own input stops it: retrying cannot help (retriable is False)."""

    def __init__(self, result: SendResult, reason: str):
        super().__init__(reason)
        self.result, self.reason = result, reason


def dropped(req: SendRequested, result: SendResult, reason: str, *, now: datetime) -> DeliveryAttempted:
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
        occurred_at=now,
        custom_args=req.custom_args,
        categories=req.categories,
    )


def recipient_of(req: SendRequested, email_version: int | None) -> Recipient:
    """Whom the message's tracking links are for (a whole message's carry no email version)."""
    annotated = bool(req.custom_args or req.categories)
    return Recipient(req.message_id, req.account_id, req.to, req.email_id, req.smtp_token_id, email_version, annotated)


def email_key(req: SendRequested) -> EmailKey | None:
    if req.raw_message is not None or req.email_id is None or req.email_version is None:
        return None
    return (req.account_id, req.email_id, req.email_version)


def recipient_key(req: SendRequested) -> RecipientKey:
    return (req.account_id, req.to.lower())


async def gather_facts(reqs: Sequence[SendRequested], ports: Ports) -> Facts:
    """The batch's email versions, recipient statuses and dedicated pools: one lookup each."""
    templated = [r for r in reqs if email_key(r) is not None]
    emails, recipients, pools = await asyncio.gather(
        ports.emails.load_many({k for r in templated if (k := email_key(r)) is not None}),
        ports.recipients.statuses({recipient_key(r) for r in templated}),
        ports.account_pools.dedicated_many({r.account_id for r in reqs}),
    )
    return Facts(emails=emails, recipients=recipients, dedicated_pools=pools)


# ---- the steps of a templated send ----------------------------------------------------------


@dataclass(slots=True)
class Draft:
    """One send request on its way through the steps: each step fills in what it found."""

    req: SendRequested
    facts: Facts
    ports: Ports
    now: datetime
    email: EmailVersion | None = None
    status: RecipientStatus | None = None
    who: Recipient | None = None
    unsubscribe: str = ""
    rendered: Rendered | None = None
    from_name: str = ""
    from_address: str = ""
    reply_to: tuple[str, ...] = ()
    mime: bytes = b""

    def drop(self, result: SendResult, reason: str) -> DeliveryAttempted:
        return dropped(self.req, result, reason, now=self.now)

    @property
    def marketing(self) -> bool:
        return self.email is not None and self.email.subscription_type is SubscriptionType.MARKETING


Step = Callable[[Draft], DeliveryAttempted | None]


def check_addresses(d: Draft) -> DeliveryAttempted | None:
    for address in (d.req.to, *d.req.cc, *d.req.bcc):
        if not valid_address(address):
            return d.drop(SendResult.INVALID_TO_ADDRESS, f"invalid recipient address {address!r}")
    return None


def load_email(d: Draft) -> DeliveryAttempted | None:
    key = email_key(d.req)
    if key is None:
        return d.drop(SendResult.MISSING_CONTENT, "no email to render")
    found = d.facts.emails.get(key)
    if isinstance(found, RenderFailed):  # the version's templates do not compile
        return d.drop(found.result, found.reason)
    if found is None:
        return d.drop(SendResult.MISSING_CONTENT, f"email {d.req.email_id} v{d.req.email_version} not found")
    d.email = found
    return None


def check_recipient(d: Draft) -> DeliveryAttempted | None:
    assert d.email is not None
    d.status = d.facts.recipients.get(recipient_key(d.req)) or RecipientStatus.unknown()
    if (blocked := recipient_block(d.email.subscription_type, d.status)) is not None:
        return d.drop(blocked, f"{d.email.subscription_type} email not sent to this contact: {blocked}")
    return None


def render_content(d: Draft) -> DeliveryAttempted | None:
    assert d.email is not None and d.status is not None
    try:
        custom = parse_custom(d.req.custom_properties_json)
    except ValueError as exc:
        raise Unprocessable(SendResult.CORRUPT_INPUT, f"customProperties is not JSON: {exc}") from exc
    if not isinstance(custom, dict):
        raise Unprocessable(SendResult.CORRUPT_INPUT, "customProperties is not an object")
    req = d.req
    d.who = recipient_of(req, req.email_version)
    d.unsubscribe = d.ports.tracker.unsubscribe_url(d.who) if d.marketing else ""
    try:
        d.rendered = render(
            d.email.compiled,
            {**d.status.properties, **req.contact_properties},
            custom,
            from_name=d.email.from_name,
            unsubscribe_link=d.unsubscribe,
            marked=d.email.tracking,
        )
    except RenderFailed as exc:
        return d.drop(exc.result, exc.reason)
    return None


def check_sender(d: Draft) -> DeliveryAttempted | None:
    assert d.email is not None and d.rendered is not None
    d.from_name, d.from_address = d.rendered.from_name, d.email.from_email
    if d.req.from_override:
        d.from_name, d.from_address = parseaddr(d.req.from_override)
    if not valid_address(d.from_address):
        return d.drop(SendResult.INVALID_FROM_ADDRESS, f"invalid From address {d.from_address!r}")
    d.reply_to = d.req.reply_to or d.email.reply_to
    if any(not valid_address(a) for a in d.reply_to):
        return d.drop(SendResult.VALIDATION_FAILED, f"invalid Reply-To {d.reply_to!r}")
    return None


def build_message(d: Draft) -> DeliveryAttempted | None:
    assert d.email is not None and d.rendered is not None and d.who is not None
    extra: tuple[tuple[str, str], ...] = ()
    if d.marketing:
        extra = (("List-Unsubscribe", f"<{d.unsubscribe}>"), ("List-Unsubscribe-Post", LIST_UNSUBSCRIBE_POST))
    html = d.rendered.html
    if d.rendered.marked:
        html = d.ports.tracker.track_marked(html, d.who, d.email.links)
    elif d.email.tracking:
        html = d.ports.tracker.track_html(html, d.who, d.email.links)
    d.mime = build_mime(
        Headers(
            message_id=d.req.message_id,
            sending_domain=sending_domain(d.from_address),
            from_header=format_mailbox(d.from_name, d.from_address),
            to=d.req.to,
            cc=d.req.cc,
            reply_to=d.reply_to,
            subject=d.rendered.subject,
            date=d.now,
            extra=extra,
        ),
        html=html,
        text=d.rendered.text,
        html_wraps_in_text=d.email.compiled.wraps_in_text,
    )
    return None


STEPS: tuple[Step, ...] = (check_addresses, load_email, check_recipient, render_content, check_sender, build_message)


def sending_domain(address: str) -> str:
    return address.rpartition("@")[2].lower()


def render_one(req: SendRequested, facts: Facts, ports: Ports) -> Outcome:
    """One request through the steps (or `render_whole`), given its batch's facts."""
    now = ports.clock()
    if req.raw_message is not None:
        if (bad := check_addresses(Draft(req, facts, ports, now))) is not None:
            return bad
        return render_whole(req, facts, ports, now)
    d = Draft(req, facts, ports, now)
    for step in STEPS:
        if (stop := step(d)) is not None:
            return stop
    assert d.email is not None
    pool = choose_ip_pool(d.email.subscription_type, req, facts, ports)
    return _rendered(req, d.email.subscription_type, d.from_address, pool, d.mime, now, d.email.tracking, ports)


async def render_send(req: SendRequested, ports: Ports) -> Outcome:
    """One request on its own (its facts looked up for it alone)."""
    return render_one(req, await gather_facts([req], ports), ports)


def render_whole(req: SendRequested, facts: Facts, ports: Ports, now: datetime) -> Outcome:
    """A message from the SMTP ingress: TRANSACTIONAL, tracked, headers kept."""
    assert req.raw_message is not None
    who = recipient_of(req, None)
    envelope_from = parseaddr(req.from_override)[1] if req.from_override else ""
    finish = {
        "message_id": req.message_id,
        "sending_domain": sending_domain(envelope_from) or "localhost",
        "date": now,
        "track": lambda html, **wanted: ports.tracker.track_html(html, who, **wanted),
    }
    try:
        # The gateway's own messages (SendGrid API) in their known form; an SMTP client's are parsed.
        built = prepare_built(req.raw_message, **finish) if req.source is SendSource.API else None
        whole = built or prepare_whole(req.raw_message, **finish)
    except CorruptMessage as exc:
        raise Unprocessable(SendResult.CORRUPT_INPUT, str(exc)) from exc
    mail_from = envelope_from or whole.from_address
    if not valid_address(mail_from):
        return dropped(req, SendResult.INVALID_FROM_ADDRESS, f"invalid From address {mail_from!r}", now=now)
    subscription_type = SubscriptionType.TRANSACTIONAL
    pool = choose_ip_pool(subscription_type, req, facts, ports)
    return _rendered(req, subscription_type, mail_from, pool, whole.mime, now, True, ports)


def choose_ip_pool(subscription_type: SubscriptionType, req: SendRequested, facts: Facts, ports: Ports) -> Pool:
    dedicated = None
    if subscription_type is SubscriptionType.TRANSACTIONAL:
        dedicated = facts.dedicated_pools.get(req.account_id)
    return choose_pool(subscription_type, dedicated, ports.pools)


def _rendered(
    req: SendRequested,
    subscription_type: SubscriptionType,
    mail_from: str,
    pool: Pool,
    mime: bytes,
    now: datetime,
    tracked: bool,
    ports: Ports,
) -> EmailRendered:
    """`mail_from` is the sender's address; the envelope gets its signed return path instead."""
    return EmailRendered(
        message_id=req.message_id,
        status_id=req.status_id,
        account_id=req.account_id,
        email_id=req.email_id,
        smtp_token_id=req.smtp_token_id,
        subscription_type=subscription_type,
        mail_from=ports.return_path(req.message_id, mail_from),
        recipients=(req.to, *req.cc, *req.bcc),
        pool=pool.name,
        sending_ip=pool.choose(),
        sending_domain=sending_domain(mail_from),
        mime=mime,
        requested_at=req.requested_at,
        rendered_at=now,
        tracked=tracked,
        custom_args=req.custom_args,
        categories=req.categories,
    )
