"""The Mail Send request body, read into frozen records with SendGrid's rules (its v3 reference):
each problem is one error naming its field, all of them in one 400. A field SendGrid has and
mailstream does not do is refused by name (never ignored); an unknown field is refused too."""

from __future__ import annotations

import base64
import binascii
import re
import time
from dataclasses import dataclass, field
from typing import Any

from mailstream.gateway.sendgrid.errors import SendGridError, unsupported
from mailstream.gateway.sendgrid.reading import Address, Reader

MAX_PERSONALIZATIONS = 1000  # SendGrid's limit, and of recipients (to, cc and bcc) per request
MAX_CATEGORIES = 10
MAX_CATEGORY_CHARS = 255
MAX_CUSTOM_ARGS_BYTES = 10_000  # per personalization, with the request's own
TOP_LEVEL = frozenset(
    {"personalizations", "from", "reply_to", "reply_to_list", "subject", "content", "attachments", "template_id",
     "headers", "categories", "custom_args", "send_at", "batch_id", "mail_settings", "tracking_settings"}
)  # fmt: skip
UNSUPPORTED = frozenset({"asm", "ip_pool_name", "sections"})
PERSONALIZATION = frozenset(
    {"to", "cc", "bcc", "from", "subject", "headers", "substitutions", "dynamic_template_data", "custom_args",
     "send_at"}
)  # fmt: skip
_TEMPLATE_ID = re.compile(r"^(?:d-)?([1-9][0-9]{0,17})$")
_CONTENT_ID = re.compile(r"^[!-~]{1,200}$")


@dataclass(frozen=True, slots=True)
class Personalization:
    to: tuple[Address, ...]
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    from_: Address | None = None
    subject: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    substitutions: dict[str, str] = field(default_factory=dict)
    dynamic_template_data: dict[str, Any] = field(default_factory=dict)
    custom_args: dict[str, str] = field(default_factory=dict)
    send_at: int | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    content: bytes  # decoded
    filename: str
    type: str = "application/octet-stream"
    disposition: str = "attachment"
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class MailSend:
    personalizations: tuple[Personalization, ...]
    from_: Address
    reply_to: tuple[Address, ...] = ()
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    template_id: int | None = None  # the mailstream email
    headers: dict[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()
    custom_args: dict[str, str] = field(default_factory=dict)
    send_at: int | None = None
    batch_id: str | None = None  # a batch of the account (the route checks it): kept with scheduled sends
    sandbox: bool = False
    track_opens: bool = True
    track_clicks: bool = True


def parse(body: Any, *, now: float | None = None) -> MailSend:
    """The request, or SendGridError(400) listing every problem."""
    now = time.time() if now is None else now
    r = Reader()
    top = r.object(body, "", TOP_LEVEL, UNSUPPORTED)
    if not top and not isinstance(body, dict):
        raise SendGridError(400, r.errors)
    template_id = _template_id(r, top.get("template_id"))
    personalizations = _personalizations(r, top.get("personalizations"), now, dynamic=template_id is not None)
    from_ = r.address(top.get("from"), "from") if top.get("from") is not None else None
    if top.get("from") is None:
        r.fail("from.email", "The from object must be provided for every email send")
    reply_to = _reply_to(r, top)
    subject = r.text(top.get("subject"), "subject", header=True)
    text, html = _content(r, top.get("content"), template_id)
    if template_id is None and not subject and any(not p.subject for p in personalizations):
        r.fail("subject", "The subject is required: give it at the top level or in every personalization")
    categories = _categories(r, top.get("categories"))
    custom_args = r.strings(top.get("custom_args"), "custom_args")
    for i, p in enumerate(personalizations):
        merged = {**custom_args, **p.custom_args}
        if sum(len(k.encode()) + len(v.encode()) for k, v in merged.items()) > MAX_CUSTOM_ARGS_BYTES:
            r.fail(f"personalizations[{i}].custom_args", f"custom_args may hold at most {MAX_CUSTOM_ARGS_BYTES} bytes")
    sandbox = _mail_settings(r, top.get("mail_settings"))
    track_opens, track_clicks = _tracking(r, top.get("tracking_settings"))
    mail = MailSend(
        personalizations=personalizations,
        from_=from_ or Address(""),
        reply_to=reply_to,
        subject=subject,
        text=text,
        html=html,
        attachments=_attachments(r, top.get("attachments")),
        template_id=template_id,
        headers=r.headers(top.get("headers"), "headers"),
        categories=categories,
        custom_args=custom_args,
        send_at=r.send_at(top.get("send_at"), "send_at", now),
        batch_id=r.text(top.get("batch_id"), "batch_id"),
        sandbox=sandbox,
        track_opens=track_opens,
        track_clicks=track_clicks,
    )
    if r.errors:
        raise SendGridError(400, r.errors)
    return mail


def _template_id(r: Reader, value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str) or not (m := _TEMPLATE_ID.match(value)):
        r.fail("template_id", "must be a mailstream email id, optionally with SendGrid's 'd-' prefix (d-42)")
        return None
    return int(m.group(1))


def _personalizations(r: Reader, value: Any, now: float, *, dynamic: bool) -> tuple[Personalization, ...]:
    if not isinstance(value, list) or not value:
        r.fail("personalizations", "is required: a list of 1 to 1000 personalizations")
        return ()
    if len(value) > MAX_PERSONALIZATIONS:
        r.fail("personalizations", f"may hold at most {MAX_PERSONALIZATIONS} personalizations")
        return ()
    found = []
    recipients = 0
    for i, item in enumerate(value):
        where = f"personalizations[{i}]"
        p = r.object(item, where, PERSONALIZATION)
        to = r.addresses(p.get("to"), f"{where}.to", required=True)
        cc = r.addresses(p.get("cc"), f"{where}.cc")
        bcc = r.addresses(p.get("bcc"), f"{where}.bcc")
        recipients += len(to) + len(cc) + len(bcc)
        seen = [a.email.lower() for a in (*to, *cc, *bcc)]
        if len(set(seen)) != len(seen):
            r.fail(where, "Each email address in the personalization block should be unique between to, cc, and bcc")
        data = p.get("dynamic_template_data")
        if data is not None and not isinstance(data, dict):
            r.fail(f"{where}.dynamic_template_data", "must be an object")
            data = None
        if data and not dynamic:
            r.fail(f"{where}.dynamic_template_data", "needs a template_id (a dynamic template)")
        substitutions = r.strings(p.get("substitutions"), f"{where}.substitutions")
        if substitutions and dynamic:
            r.fail(f"{where}.substitutions", "is not used with dynamic templates: give dynamic_template_data")
        found.append(
            Personalization(
                to=to,
                cc=cc,
                bcc=bcc,
                from_=r.address(p["from"], f"{where}.from") if p.get("from") is not None else None,
                subject=r.text(p.get("subject"), f"{where}.subject", header=True),
                headers=r.headers(p.get("headers"), f"{where}.headers"),
                substitutions=substitutions,
                dynamic_template_data=data or {},
                custom_args=r.strings(p.get("custom_args"), f"{where}.custom_args"),
                send_at=r.send_at(p.get("send_at"), f"{where}.send_at", now),
            )
        )
    if recipients > MAX_PERSONALIZATIONS:
        r.fail("personalizations", f"may address at most {MAX_PERSONALIZATIONS} recipients (to, cc and bcc)")
    return tuple(found)


def _reply_to(r: Reader, top: dict[str, Any]) -> tuple[Address, ...]:
    if top.get("reply_to") is not None and top.get("reply_to_list") is not None:
        r.fail("reply_to_list", "give reply_to or reply_to_list, not both")
        return ()
    if top.get("reply_to") is not None:
        one = r.address(top["reply_to"], "reply_to")
        return (one,) if one else ()
    return r.addresses(top.get("reply_to_list"), "reply_to_list")


def _content(r: Reader, value: Any, template_id: int | None) -> tuple[str | None, str | None]:
    if value is None:
        if template_id is None:
            r.fail("content", "is required unless a template_id is given")
        return None, None
    if template_id is not None:
        r.fail("content", "give content or template_id, not both (the template has the content)")
        return None, None
    if not isinstance(value, list) or not value:
        r.fail("content", "must be a non-empty list of {type, value}")
        return None, None
    parts: dict[str, str] = {}
    for i, item in enumerate(value):
        c = r.object(item, f"content[{i}]", frozenset({"type", "value"}))
        kind = r.text(c.get("type"), f"content[{i}].type", required=True)
        text = r.text(c.get("value"), f"content[{i}].value", required=True)
        if kind is None or text is None:
            continue
        if kind not in ("text/plain", "text/html"):
            r.errors.append(unsupported(f"content[{i}].type", f"{kind} content"))
        elif kind in parts:
            r.fail(f"content[{i}].type", f"{kind} is given twice")
        elif kind == "text/plain" and parts:
            r.fail(f"content[{i}].type", "text/plain must be the first content")
        else:
            parts[kind] = text
    return parts.get("text/plain"), parts.get("text/html")


def _attachments(r: Reader, value: Any) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        r.fail("attachments", "must be a list")
        return ()
    found = []
    allowed = frozenset({"content", "filename", "type", "disposition", "content_id"})
    for i, item in enumerate(value):
        where = f"attachments[{i}]"
        a = r.object(item, where, allowed)
        content = r.text(a.get("content"), f"{where}.content", required=True)
        filename = r.text(a.get("filename"), f"{where}.filename", required=True, header=True)
        kind = r.text(a.get("type"), f"{where}.type", header=True) or "application/octet-stream"
        disposition = r.text(a.get("disposition"), f"{where}.disposition") or "attachment"
        content_id = r.text(a.get("content_id"), f"{where}.content_id")
        if not re.fullmatch(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+", kind):
            r.fail(f"{where}.type", "must be a MIME type (type/subtype)")
        if disposition not in ("attachment", "inline"):
            r.fail(f"{where}.disposition", "must be attachment or inline")
        if disposition == "inline" and not content_id:
            r.fail(f"{where}.content_id", "is required for an inline attachment")
        if content_id is not None and not _CONTENT_ID.match(content_id):
            r.fail(f"{where}.content_id", "must be printable ASCII without spaces")
        decoded = None
        if content is not None:
            try:
                decoded = base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                r.fail(f"{where}.content", "must be base64-encoded")
        if decoded is not None and filename is not None:
            found.append(Attachment(decoded, filename, kind, disposition, content_id))
    return tuple(found)


def _categories(r: Reader, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        r.fail("categories", "must be a list of strings")
        return ()
    if len(value) > MAX_CATEGORIES:
        r.fail("categories", f"may hold at most {MAX_CATEGORIES} categories")
    for i, c in enumerate(value):
        if not c or len(c) > MAX_CATEGORY_CHARS or not c.isascii() or any(ch in c for ch in "\r\n,"):
            r.fail(f"categories[{i}]", f"must be 1 to {MAX_CATEGORY_CHARS} ASCII characters, no comma or line break")
    if len(set(value)) != len(value):
        r.fail("categories", "must be unique")
    return tuple(value)


def _mail_settings(r: Reader, value: Any) -> bool:
    if value is None:
        return False
    known = frozenset({"sandbox_mode"})
    others = frozenset({"bypass_list_management", "bypass_spam_management", "bypass_bounce_management",
                        "bypass_unsubscribe_management", "footer", "spam_check"})  # fmt: skip
    settings = r.object(value, "mail_settings", known, others)
    if settings.get("sandbox_mode") is None:
        return False
    return bool(r.flag(settings["sandbox_mode"], "mail_settings.sandbox_mode"))


def _tracking(r: Reader, value: Any) -> tuple[bool, bool]:
    if value is None:
        return True, True
    others = frozenset({"subscription_tracking", "ganalytics"})
    settings = r.object(value, "tracking_settings", frozenset({"click_tracking", "open_tracking"}), others)
    opens = clicks = True
    if (click := settings.get("click_tracking")) is not None:
        clicks = r.flag(click, "tracking_settings.click_tracking", frozenset({"enable", "enable_text"})) is not False
        if isinstance(click, dict) and click.get("enable_text"):
            r.errors.append(unsupported("tracking_settings.click_tracking.enable_text"))
    if (open_ := settings.get("open_tracking")) is not None:
        opens = r.flag(open_, "tracking_settings.open_tracking", frozenset({"enable", "substitution_tag"})) is not False
        if isinstance(open_, dict) and open_.get("substitution_tag") is not None:
            r.errors.append(unsupported("tracking_settings.open_tracking.substitution_tag"))
    return opens, clicks
