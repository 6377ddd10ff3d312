"""Which events suppress an address for an account (the `suppressions` table). Pure.

A hard bounce -> BOUNCED; an unsubscribe -> UNSUBSCRIBED, or SPAM_REPORT when the unsubscribe
comes from a spam report. The renderer drops MARKETING mail to suppressed addresses; the gateway
answers PREVIOUSLY_BOUNCED / PREVIOUS_SPAM from them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, UnsubscribeReason, UnsubscribeRecorded

# Bounce classes that are temporary conditions, not a dead address (a 5xx without a class is hard).
SOFT_BOUNCE_CLASSES = frozenset(
    {"soft", "mailbox-full", "quota", "message-too-large", "content", "spam-related", "policy", "rate-limited"}
)


@dataclass(frozen=True, slots=True)
class Suppression:
    account_id: int
    address: str
    reason: str  # BOUNCED | SPAM_REPORT | UNSUBSCRIBED
    message_id: str | None
    detail: str | None


def is_hard_bounce(evt: DeliveryAttempted) -> bool:
    if evt.outcome is not DeliveryOutcome.BOUNCED:
        return False
    if evt.bounce_class:
        cls = evt.bounce_class.strip().lower()
        return cls not in SOFT_BOUNCE_CLASSES and not cls.startswith("soft")
    return evt.smtp_code is None or 500 <= evt.smtp_code < 600


def on_bounce(evt: DeliveryAttempted) -> Suppression | None:
    if not is_hard_bounce(evt):
        return None
    detail = " ".join(str(p) for p in (evt.smtp_code, evt.bounce_class, evt.smtp_reply) if p)[:1000] or None
    return Suppression(evt.account_id, evt.recipient.lower(), "BOUNCED", evt.message_id, detail)


def on_unsubscribe(evt: UnsubscribeRecorded) -> Suppression:
    reason = "SPAM_REPORT" if evt.reason is UnsubscribeReason.SPAM_REPORT else "UNSUBSCRIBED"
    return Suppression(evt.account_id, evt.recipient.lower(), reason, evt.message_id, evt.reason.value)
