"""The closed set of delivery outcomes, and the one place SMTP errors are mapped to them.

Delivered | Deferred | Bounced | Dropped are published on email.delivery. Two internal results
never reach the topic as a delivery: Rerouted (warm-up overflow to another IP of the pool,
re-published on email.rendered under the new IP's key) and Replayed (a redelivered record
whose delivery had already ended: its stored outcome event is published again).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Delivered:
    code: int
    reply: str
    remote_host: str | None = None


@dataclass(frozen=True, slots=True)
class Deferred:
    code: int | None
    reply: str
    remote_host: str | None = None
    retry_after: float | None = None  # a floor for the next attempt (suspension, throttle, warm-up)


@dataclass(frozen=True, slots=True)
class Bounced:
    code: int | None
    reply: str
    remote_host: str | None = None
    bounce_class: str | None = None  # 'hard:InvalidRecipient', 'soft:MessageExpired' ...
    send_result: str = "UNDELIVERABLE"


@dataclass(frozen=True, slots=True)
class Dropped:
    reason: str
    send_result: str = "MTA_IGNORE"


@dataclass(frozen=True, slots=True)
class Rerouted:
    sending_ip: str
    reason: str


@dataclass(frozen=True, slots=True)
class Replayed:
    event: bytes


Outcome = Delivered | Deferred | Bounced | Dropped
StepResult = Outcome | Rerouted | Replayed


def classify_smtp_error(exc: Exception, remote_host: str | None = None) -> Deferred | Bounced:
    """4xx, timeouts and lost connections -> Deferred; 5xx -> Bounced (classified later by policy).

    Reads the reply an SMTP error carries in `code` and `message` (adapters/smtp_wire.py's errors,
    aiosmtplib's too); when every recipient was refused (`recipients`), the first refusal decides."""
    code = getattr(exc, "code", None)
    reply = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    refused = getattr(exc, "recipients", None)
    if refused:
        code, reply = refused[0].code, refused[0].message
    if isinstance(code, int) and 500 <= code < 600:
        return Bounced(code, reply, remote_host)
    return Deferred(code if isinstance(code, int) and code > 0 else None, reply, remote_host)
