"""SendRequested -> EmailRendered, or DeliveryAttempted(DROPPED) with the sendResult that ended it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formataddr, parseaddr

from mailstream.renderer.mime import build_mime
from mailstream.renderer.pools import Pool
from mailstream.renderer.render import CompiledEmail, RenderFailed, render
from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EmailRendered,
    SendRequested,
    SendResult,
    SubscriptionType,
)


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


LoadEmail = Callable[[int, int, int], Awaitable[EmailVersion | None]]  # (account, email, version)


def dropped(req: SendRequested, result: SendResult, reason: str) -> DeliveryAttempted:
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
        occurred_at=datetime.now(UTC),
    )


async def render_send(
    req: SendRequested, *, load_email: LoadEmail, pools: dict[str, Pool]
) -> EmailRendered | DeliveryAttempted:
    if req.email_id is None or req.email_version is None:
        return dropped(req, SendResult.MISSING_CONTENT, "no email to render")
    try:
        email = await load_email(req.account_id, req.email_id, req.email_version)
        if email is None:
            return dropped(req, SendResult.MISSING_CONTENT, f"email {req.email_id} v{req.email_version} not found")
        custom = json.loads(req.custom_properties_json)
        rendered = render(email.compiled, req.contact_properties, custom)
    except RenderFailed as exc:
        return dropped(req, exc.result, exc.reason)

    from_header = req.from_override or formataddr((email.from_name, email.from_email))
    from_address = parseaddr(from_header)[1]
    sending_domain = from_address.rpartition("@")[2].lower()
    if not sending_domain:
        return dropped(req, SendResult.INVALID_FROM_ADDRESS, f"no domain in From {from_header!r}")
    pool = pools["shared"]
    now = datetime.now(UTC)
    mime = build_mime(
        message_id=req.message_id,
        sending_domain=sending_domain,
        from_header=from_header,
        to=req.to,
        cc=req.cc,
        reply_to=req.reply_to or email.reply_to,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        date=now,
    )
    return EmailRendered(
        message_id=req.message_id,
        status_id=req.status_id,
        account_id=req.account_id,
        email_id=req.email_id,
        smtp_token_id=req.smtp_token_id,
        subscription_type=email.subscription_type,
        mail_from=from_address,
        recipients=(req.to, *req.cc, *req.bcc),
        pool=pool.name,
        sending_ip=pool.choose(),
        sending_domain=sending_domain,
        mime=mime,
        requested_at=req.requested_at,
        rendered_at=now,
    )
