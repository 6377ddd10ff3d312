"""Transactional/marketing rules and the sending-pool choice: pure, tested without a database.

TRANSACTIONAL: relationship mail triggered by the recipient. No subscription, quarantine or
double opt-in check, no unsubscribe link; it leaves from the account's dedicated pool if any.
An address that hard-bounced or reported spam gets neither kind (as the gateway decides at
accept time; checked again here because the bounce may land between accept and render).
MARKETING: only to contacts who may receive it, always with an unsubscribe link and the
RFC 8058 headers; it leaves from the shared pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mailstream.renderer.pools import Pool
from mailstream.schemas import SendResult, SubscriptionType

log = logging.getLogger(__name__)

SHARED_POOL = "shared"


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    """What the gateway's `contacts` row and the tracker's `suppressions` rows say about one address."""

    properties: dict[str, str]
    subscription_status: str = "NOT_SPECIFIED"  # SUBSCRIBED | UNSUBSCRIBED | NOT_SPECIFIED
    quarantined: bool = False
    double_opt_in: str = "NOT_REQUIRED"  # CONFIRMED | PENDING | NOT_REQUIRED
    bounced: bool = False
    spam_reported: bool = False
    suppressed: frozenset[str] = frozenset()  # BOUNCED | SPAM_REPORT | UNSUBSCRIBED | MANUAL

    @classmethod
    def unknown(cls) -> RecipientStatus:
        return cls(properties={})


def undeliverable(status: RecipientStatus) -> SendResult | None:
    """A previous hard bounce or spam report, or the account's own block, stops every email to the address."""
    if "MANUAL" in status.suppressed:
        return SendResult.BLOCKED_ADDRESS
    if status.bounced or "BOUNCED" in status.suppressed:
        return SendResult.PREVIOUSLY_BOUNCED
    if status.spam_reported or "SPAM_REPORT" in status.suppressed:
        return SendResult.PREVIOUS_SPAM
    return None


def marketing_block(status: RecipientStatus) -> SendResult | None:
    """Why a MARKETING email must not go to this recipient, or None. The first reason wins."""
    if (result := undeliverable(status)) is not None:
        return result
    if status.subscription_status == "UNSUBSCRIBED" or "UNSUBSCRIBED" in status.suppressed:
        return SendResult.PREVIOUSLY_UNSUBSCRIBED_PORTAL
    if status.quarantined:
        return SendResult.QUARANTINED_ADDRESS
    if status.double_opt_in == "PENDING":
        return SendResult.EMAIL_UNCONFIRMED
    return None


def recipient_block(subscription_type: SubscriptionType, status: RecipientStatus) -> SendResult | None:
    if subscription_type is SubscriptionType.TRANSACTIONAL:
        return undeliverable(status)  # relationship mail bypasses every subscription status
    return marketing_block(status)


def choose_pool(subscription_type: SubscriptionType, dedicated: str | None, pools: dict[str, Pool]) -> Pool:
    """The account's dedicated pool for TRANSACTIONAL mail (when the policy has it), else the shared one."""
    if subscription_type is SubscriptionType.TRANSACTIONAL and dedicated:
        if dedicated in pools:
            return pools[dedicated]
        log.warning("account pool %r is not in the sending policy; using the shared pool", dedicated)
    return pools[SHARED_POOL]
