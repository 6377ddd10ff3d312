"""Transactional/marketing rules and the pool choice."""

import pytest

from mailstream.renderer.pools import Pool
from mailstream.renderer.rules import RecipientStatus, choose_pool, recipient_block
from mailstream.schemas import SendResult, SubscriptionType

T, M = SubscriptionType.TRANSACTIONAL, SubscriptionType.MARKETING
POOLS = {"shared": Pool("shared", ("127.0.0.2",), (1,)), "acme": Pool("acme", ("127.0.0.3",), (1,))}

BLOCKED = [
    (RecipientStatus(properties={}, subscription_status="UNSUBSCRIBED"), SendResult.PREVIOUSLY_UNSUBSCRIBED_PORTAL),
    (RecipientStatus(properties={}, bounced=True), SendResult.PREVIOUSLY_BOUNCED),
    (RecipientStatus(properties={}, spam_reported=True), SendResult.PREVIOUS_SPAM),
    (RecipientStatus(properties={}, suppressed=frozenset({"UNSUBSCRIBED"})), SendResult.PREVIOUSLY_UNSUBSCRIBED_PORTAL),
    (RecipientStatus(properties={}, suppressed=frozenset({"BOUNCED"})), SendResult.PREVIOUSLY_BOUNCED),
    (RecipientStatus(properties={}, suppressed=frozenset({"SPAM_REPORT"})), SendResult.PREVIOUS_SPAM),
    (RecipientStatus(properties={}, suppressed=frozenset({"MANUAL"})), SendResult.BLOCKED_ADDRESS),
    (RecipientStatus(properties={}, quarantined=True), SendResult.QUARANTINED_ADDRESS),
    (RecipientStatus(properties={}, double_opt_in="PENDING"), SendResult.EMAIL_UNCONFIRMED),
]


@pytest.mark.parametrize(("status", "result"), BLOCKED)
def test_marketing_mail_is_blocked_for_the_reason(status, result):
    assert recipient_block(M, status) is result


UNSUBSCRIBED_OR_UNCONFIRMED = [
    RecipientStatus(properties={}, subscription_status="UNSUBSCRIBED"),
    RecipientStatus(properties={}, suppressed=frozenset({"UNSUBSCRIBED"})),
    RecipientStatus(properties={}, quarantined=True),
    RecipientStatus(properties={}, double_opt_in="PENDING"),
]


@pytest.mark.parametrize("status", UNSUBSCRIBED_OR_UNCONFIRMED)
def test_transactional_mail_bypasses_subscription_quarantine_and_double_opt_in(status):
    assert recipient_block(T, status) is None


STOPS_ALL = ("BOUNCE", "SPAM", "BLOCKED")


@pytest.mark.parametrize(("status", "result"), [b for b in BLOCKED if any(w in b[1] for w in STOPS_ALL)])
def test_a_hard_bounce_spam_report_or_manual_block_stops_transactional_mail_too(status, result):
    assert recipient_block(T, status) is result


def test_a_bounce_wins_over_an_unsubscribe():
    status = RecipientStatus(properties={}, subscription_status="UNSUBSCRIBED", bounced=True)
    assert recipient_block(M, status) is SendResult.PREVIOUSLY_BOUNCED


@pytest.mark.parametrize(
    "status",
    [
        RecipientStatus.unknown(),
        RecipientStatus(properties={}, subscription_status="SUBSCRIBED", double_opt_in="CONFIRMED"),
    ],
)
def test_marketing_mail_goes_to_subscribed_or_unknown_contacts(status):
    assert recipient_block(M, status) is None


def test_transactional_mail_uses_the_dedicated_pool():
    assert choose_pool(T, "acme", POOLS).name == "acme"


def test_marketing_mail_always_uses_the_shared_pool():
    assert choose_pool(M, "acme", POOLS).name == "shared"


def test_no_or_an_unknown_dedicated_pool_falls_back_to_shared():
    assert choose_pool(T, None, POOLS).name == "shared"
    assert choose_pool(T, "gone", POOLS).name == "shared"
