"""The closed set of delivery outcomes, and the one place SMTP replies are classified."""

from __future__ import annotations

from dataclasses import dataclass

import aiosmtplib


@dataclass(frozen=True, slots=True)
class Delivered:
    code: int
    reply: str


@dataclass(frozen=True, slots=True)
class Deferred:
    code: int | None
    reply: str


@dataclass(frozen=True, slots=True)
class Bounced:
    code: int
    reply: str


Outcome = Delivered | Deferred | Bounced


def classify_smtp_error(exc: Exception) -> Outcome:
    """4xx, timeouts and lost connections -> Deferred; 5xx -> Bounced."""
    code = getattr(exc, "code", None)
    reply = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        code, reply = first.code, first.message
    if isinstance(code, int) and 500 <= code < 600:
        return Bounced(code, reply)
    return Deferred(code if isinstance(code, int) else None, reply)
