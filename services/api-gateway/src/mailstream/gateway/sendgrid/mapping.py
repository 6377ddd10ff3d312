"""A Mail Send request -> one SendCommand per recipient (to, cc and bcc) of each personalization,
for the single-send API's accept path (handlers.Acceptor.send_many). A personalization's
recipients get the same message (its To and Cc headers name them all, as in SendGrid), each as
its own send: its own suppression checks, status, delivery and events, as SendGrid reports
each recipient of a personalization.

Ids: the request's X-Message-Id is derived from the caller's idempotency key when it gives one
(else random), and recipient j (to, then cc, then bcc) of personalization i has the sendId
`<X-Message-Id>.<i>.<j>`: the same key sends nothing twice (the rows' sendIds are taken), and a
status is found by its sendId.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from mailstream.gateway.handlers import SEND_ID_NAMESPACE, SendCommand
from mailstream.gateway.sendgrid.errors import SendGridError, error
from mailstream.gateway.sendgrid.message import Body, mailbox, whole_message
from mailstream.gateway.sendgrid.request import Address, MailSend, Personalization
from mailstream.gateway.sendgrid.templates import Compiled, TemplateFailed, render

MAX_BODY_BYTES = 30 * 1024 * 1024  # SendGrid's: the request, attachments included
MAX_MESSAGE_BYTES = 5 * 1024 * 1024  # one personalization's message: Kafka records stay under 10 MiB
MAX_TOTAL_BYTES = 64 * 1024 * 1024  # all the request's messages
TOO_LARGE = "The JSON payload you have included in your request is too large."


@dataclass(frozen=True, slots=True)
class Template:
    """The mailstream email a template_id names, at its current version."""

    email_id: int
    version: int
    compiled: Compiled
    reply_to: tuple[Address, ...]


def message_id_of(account_id: int, idempotency_key: str | None) -> str:
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(SEND_ID_NAMESPACE, f"sendgrid/{account_id}/{idempotency_key}"))


def too_large(what: str) -> SendGridError:
    return SendGridError(413, [error(None, f"{TOO_LARGE} ({what})")])


def _substituted(value: str | None, substitutions: dict[str, str], where: str) -> str | None:
    if value is None or not substitutions:
        return value
    grown = sum(value.count(k) * max(0, len(v) - len(k)) for k, v in substitutions.items() if k)
    if len(value) + grown > MAX_MESSAGE_BYTES:
        raise too_large(f"{where}: substitutions make it larger than {MAX_MESSAGE_BYTES} bytes")
    for key, replacement in substitutions.items():
        if key:
            value = value.replace(key, replacement)
    return value


def commands(
    mail: MailSend,
    *,
    x_message_id: str,
    template: Template | None,
    require_sending_domain: bool,
) -> list[SendCommand]:
    body = Body(mail.attachments)
    shared = None  # the body every personalization has, when nothing in it is personal
    if template is None and not any(p.substitutions for p in mail.personalizations):
        shared = body.build(mail.text, mail.html)
    total = 0
    cmds = []
    for i, p in enumerate(mail.personalizations):
        raw = _message(mail, p, i, body, shared, template)
        if len(raw) > MAX_MESSAGE_BYTES:
            raise too_large(f"personalizations[{i}]: its message is larger than {MAX_MESSAGE_BYTES} bytes")
        recipients = (*p.to, *p.cc, *p.bcc)
        total += len(raw) * len(recipients)  # each recipient's send carries the message
        if total > MAX_TOTAL_BYTES:
            raise too_large(f"the request's messages are larger than {MAX_TOTAL_BYTES} bytes together")
        send_at = p.send_at if p.send_at is not None else mail.send_at
        personalization = SendCommand(
            email_id=template.email_id if template else None,
            to="",  # each recipient's below
            require_single_send_api=True,
            from_=mailbox(p.from_ or mail.from_),
            send_at=datetime.fromtimestamp(send_at, UTC) if send_at is not None else None,
            require_sending_domain=require_sending_domain,
            raw_message=raw,
            custom_args={**mail.custom_args, **p.custom_args},
            categories=mail.categories,
            batch_id=mail.batch_id,
        )
        cmds += [
            replace(personalization, to=r.email, send_id=f"{x_message_id}.{i}.{j}") for j, r in enumerate(recipients)
        ]
    return cmds


def _message(
    mail: MailSend, p: Personalization, i: int, body: Body, shared: bytes | None, template: Template | None
) -> bytes:
    where = f"personalizations[{i}]"
    subject = p.subject or mail.subject
    if template is not None:
        try:
            rendered = render(template.compiled, p.dynamic_template_data)
        except TemplateFailed as exc:
            raise SendGridError(400, [error(f"{where}.dynamic_template_data", str(exc))]) from exc
        subject = subject or rendered.subject
        content = body.build(rendered.text or None, rendered.html or None)
    elif shared is not None:
        content = shared
    else:
        subject = _substituted(subject, p.substitutions, f"{where}.subject")
        content = body.build(
            _substituted(mail.text, p.substitutions, f"{where}.text"),
            _substituted(mail.html, p.substitutions, f"{where}.html"),
        )
    return whole_message(
        from_=p.from_ or mail.from_,
        to=p.to,
        cc=p.cc,
        reply_to=mail.reply_to or (template.reply_to if template else ()),
        subject=subject or "",
        headers={**mail.headers, **p.headers},
        track_opens=mail.track_opens,
        track_clicks=mail.track_clicks,
        body=content,
    )
