"""Delivery status notifications (RFC 3464) mailed to a message's return path -> late bounces. Pure.

A DSN is a multipart/report; report-type=delivery-status with a message/delivery-status part:
a block of per-message fields, then one block per recipient (Final-Recipient, Action, Status,
Diagnostic-Code, Remote-MTA). Only `Action: failed` with a permanent `Status: 5.x.x` is a bounce;
delayed, delivered, relayed and expanded recipients are not, nor a 4.x.x failure. Anything else
mailed to a return path (an out-of-office reply, a challenge, a report this does not parse) is
NotADsn with the reason, never a bounce.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import parseaddr

_STATUS = re.compile(r"^([245])\.\d{1,3}\.\d{1,3}$")
_SMTP_CODE = re.compile(r"^\s*([245]\d\d)\b")
# RFC 3834 Auto-Submitted, and the headers of vacation / autoresponder programs that predate it.
_AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Vacation")


class NotADsn(ValueError):
    """What was mailed to a return path is not a delivery status notification (the reason says why)."""


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    recipient: str | None  # Final-Recipient (else Original-Recipient), lower-cased
    action: str  # failed | delayed | delivered | relayed | expanded
    status: str  # 5.1.1
    diagnostic: str | None = None  # the Diagnostic-Code's text, "550 5.1.1 ... User unknown"
    smtp_code: int | None = None  # from an smtp Diagnostic-Code
    remote_mta: str | None = None
    original_recipient: str | None = None  # Original-Recipient: the address we sent to, when given

    @property
    def is_bounce(self) -> bool:
        return self.action == "failed" and self.status.startswith("5.")

    @property
    def classified_text(self) -> str:
        """What the bounce table searches (after the code): the Status, then the diagnostic."""
        return f"{self.status} {self.diagnostic or ''}".strip()


def _address(value: str | None) -> str | None:
    """The address of a "rfc822; jane@example.com" field."""
    if not value:
        return None
    text = " ".join(str(value).split()).partition(";")[2] or str(value)
    return (parseaddr(text.strip())[1] or text.strip().strip("<>")).lower() or None


def auto_reply_reason(msg: Message) -> str | None:
    """Why a message is an automatic reply (RFC 3834 or a vacation program's headers), or None."""
    submitted = (msg.get("Auto-Submitted") or "").strip().lower()
    if submitted.startswith("auto-replied"):
        return f"auto-reply (Auto-Submitted: {submitted})"
    for name in _AUTO_REPLY_HEADERS:
        if msg.get(name) is not None:
            return f"auto-reply ({name})"
    if (msg.get("Precedence") or "").strip().lower() in ("auto_reply", "bulk", "junk"):
        return f"auto-reply (Precedence: {msg.get('Precedence').strip()})"
    return None


def parse_dsn(raw: bytes) -> list[RecipientStatus]:
    """The per-recipient statuses of a DSN (at least one), or NotADsn with the reason."""
    msg = email.message_from_bytes(raw)
    if msg.get_content_type() != "multipart/report" or (msg.get_param("report-type") or "").lower() != (
        "delivery-status"
    ):
        reason = auto_reply_reason(msg)
        raise NotADsn(reason or f"not a multipart/report; report-type=delivery-status ({msg.get_content_type()})")
    blocks = None
    for part in msg.get_payload() if msg.is_multipart() else ():
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            blocks = _blocks(part)
            break
    if blocks is None:
        raise NotADsn(auto_reply_reason(msg) or "the report has no message/delivery-status part")
    statuses = [_recipient(b) for b in blocks[1:]]
    statuses = [s for s in statuses if s is not None]
    if not statuses:
        raise NotADsn("the delivery-status part has no per-recipient fields with Action and Status")
    return statuses


def _blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload
    # an encoded part, or one Python did not split: the blocks are separated by empty lines
    text = part.get_payload(decode=True) or b""
    chunks = re.split(rb"\r?\n\r?\n", text.strip())
    return [email.message_from_bytes(chunk) for chunk in chunks if chunk.strip()]


def _recipient(block: Message) -> RecipientStatus | None:
    action = (block.get("Action") or "").strip().lower()
    status = (block.get("Status") or "").strip().split(" ")[0]
    if not action or not _STATUS.match(status):
        return None
    diagnostic, code = None, None
    if (value := block.get("Diagnostic-Code")) is not None:
        kind, _, text = " ".join(str(value).split()).partition(";")
        diagnostic = text.strip() or kind.strip()
        if kind.strip().lower() == "smtp" and (found := _SMTP_CODE.match(diagnostic)):
            code = int(found.group(1))
    remote = block.get("Remote-MTA")
    return RecipientStatus(
        recipient=_address(block.get("Final-Recipient")) or _address(block.get("Original-Recipient")),
        original_recipient=_address(block.get("Original-Recipient")),
        action=action,
        status=status,
        diagnostic=diagnostic[:900] if diagnostic else None,
        smtp_code=code,
        remote_mta=str(remote).partition(";")[2].strip() or None if remote else None,
    )
