"""Feedback-loop reports -> complaints: ARF (RFC 5965) and Amazon SES complaint notifications.

Pure parsing. A complaint names our message by its `X-Mailstream-ID` header, or by the
Message-ID we generated (`<message id@sending domain>`), and the complaining recipient when
the report says it (ARF `Original-Rcpt-To`, SES `complainedRecipients`).
"""

from __future__ import annotations

import email
import json
import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import parseaddr

from mailstream.schemas.headers import MESSAGE_ID_HEADER

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

# Feedback types (ARF Feedback-Type, RFC 5965 7.3 and 6591; SES complaintFeedbackType) that are not
# a recipient calling the message spam: abuse, fraud and other are.
NOT_SPAM_FEEDBACK_TYPES = frozenset({"not-spam", "virus", "auth-failure"})


class NotAReport(ValueError):
    """The input is not a feedback report this intake understands."""


@dataclass(frozen=True, slots=True)
class Complaint:
    message_id: str | None  # our message id, when the report carries it
    recipient: str | None  # the complaining address, when the report names it
    feedback_type: str
    source: str  # "arf" or "ses"
    user_agent: str | None = None  # the reporting system

    @property
    def is_spam(self) -> bool:
        return self.feedback_type not in NOT_SPAM_FEEDBACK_TYPES


def message_id_from_headers(headers: Message | dict) -> str | None:
    """Our message id from an original message's headers: X-Mailstream-ID, else Message-ID."""
    for name in (MESSAGE_ID_HEADER, "Message-ID"):
        value = headers.get(name)
        if value and (found := _UUID.search(str(value))):
            return found.group(0).lower()
    return None


def _address(value: str | None) -> str | None:
    if not value:
        return None
    address = parseaddr(value.split(";")[-1].strip())[1] or value.strip().strip("<>")
    return address.lower() or None


def parse_arf(raw: bytes) -> Complaint:
    report = email.message_from_bytes(raw)
    if report.get_content_type() != "multipart/report" or report.get_param("report-type") != "feedback-report":
        raise NotAReport("not a multipart/report; report-type=feedback-report message")
    fields: Message | None = None
    original: Message | None = None
    for part in report.get_payload():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report":
            fields = _first_submessage(part)
        elif ctype == "message/rfc822":
            original = _first_submessage(part)
        elif ctype == "text/rfc822-headers":
            original = HeaderParser().parsestr(part.get_payload(decode=True).decode("utf-8", "replace"))
    if fields is None:
        raise NotAReport("the report has no message/feedback-report part")
    feedback_type = (fields.get("Feedback-Type") or "").strip().lower()
    if not feedback_type:
        raise NotAReport("the feedback report has no Feedback-Type field")
    rcpt = _address(fields.get("Original-Rcpt-To")) or _address(fields.get("Removal-Recipient"))
    return Complaint(
        message_id=message_id_from_headers(original) if original is not None else None,
        recipient=rcpt,
        feedback_type=feedback_type,
        source="arf",
        user_agent=fields.get("User-Agent"),
    )


def _first_submessage(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    if isinstance(payload, str):  # a base64 or quoted-printable encoded part
        data = part.get_payload(decode=True) or b""
        return email.message_from_bytes(data)
    return None


def parse_ses(body: bytes) -> list[Complaint]:
    """An SES complaint notification, bare or wrapped in an SNS envelope (one per complained recipient)."""
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
            doc = json.loads(doc["Message"])
    except (ValueError, TypeError) as exc:
        raise NotAReport(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise NotAReport("not a JSON object")
    kind = doc.get("notificationType") or doc.get("eventType")
    if kind != "Complaint":
        raise NotAReport(f"not a complaint notification: {kind!r}")
    complaint, mail = doc.get("complaint") or {}, doc.get("mail") or {}
    headers = {h.get("name"): h.get("value") for h in mail.get("headers") or [] if isinstance(h, dict)}
    headers = {k.lower(): v for k, v in headers.items() if k}
    common = mail.get("commonHeaders") or {}
    message_id = message_id_from_headers(
        {MESSAGE_ID_HEADER: headers.get(MESSAGE_ID_HEADER.lower()), "Message-ID": headers.get("message-id")}
    ) or message_id_from_headers({"Message-ID": common.get("messageId")})
    feedback_type = (complaint.get("complaintFeedbackType") or "abuse").lower()
    recipients = [_address(r.get("emailAddress")) for r in complaint.get("complainedRecipients") or []]
    return [Complaint(message_id, r, feedback_type, "ses", complaint.get("userAgent")) for r in recipients or [None]]
