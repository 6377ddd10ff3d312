"""MIME assembly: multipart/alternative text + HTML, RFC 2047 headers, UTF-8 bodies."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

MESSAGE_ID_HEADER = "X-Mailstream-ID"  # feedback-loop reports carry it back to us


def build_mime(
    *,
    message_id: str,
    sending_domain: str,
    from_header: str,
    to: str,
    cc: tuple[str, ...],
    reply_to: tuple[str, ...],
    subject: str,
    html: str,
    text: str,
    date: datetime,
) -> bytes:
    msg = EmailMessage(policy=SMTP)
    msg["Message-ID"] = f"<{message_id}@{sending_domain}>"
    msg["Date"] = format_datetime(date)
    msg["From"] = from_header
    msg["To"] = to
    if cc:
        msg["Cc"] = ", ".join(cc)
    if reply_to:
        msg["Reply-To"] = ", ".join(reply_to)
    msg["Subject"] = subject
    msg[MESSAGE_ID_HEADER] = message_id
    msg.set_content(text, charset="utf-8")
    msg.add_alternative(html, subtype="html", charset="utf-8")
    return msg.as_bytes()
