from datetime import UTC, datetime

from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, EngagementKind, UnsubscribeReason
from mailstream.schemas.links import LinkKind, TrackedLink
from mailstream.tracker import engagement
from mailstream.tracker.suppression import is_hard_bounce, on_bounce, on_unsubscribe

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def bounce(code=550, cls=None, outcome=DeliveryOutcome.BOUNCED):
    return DeliveryAttempted(
        event_id="e",
        message_id="0b6c3f9e-5a55-4c1e-9d7e-3f0e8a1b2c3d",
        status_id="s",
        account_id=1,
        recipient="Jane@Example.com",
        outcome=outcome,
        send_result="UNDELIVERABLE",
        occurred_at=T0,
        bounce_class=cls,
        smtp_code=code,
        smtp_reply="5.1.1 no such user",
    )


def test_a_5xx_bounce_suppresses_the_lower_cased_address():
    s = on_bounce(bounce())
    assert (s.address, s.reason, s.account_id) == ("jane@example.com", "BOUNCED", 1)
    assert "550" in s.detail


def test_soft_bounce_classes_and_other_outcomes_do_not_suppress():
    assert not is_hard_bounce(bounce(cls="mailbox-full"))
    assert not is_hard_bounce(bounce(cls="soft-policy"))
    assert is_hard_bounce(bounce(cls="bad-mailbox"))
    # the sender's classes (deploy/policy/bounces.toml): "hard:<class>" or "soft:<class>"
    assert is_hard_bounce(bounce(cls="hard:InvalidRecipient"))
    assert not is_hard_bounce(bounce(cls="soft:QuotaIssues"))
    assert not is_hard_bounce(bounce(cls="soft:MessageExpired"))
    assert on_bounce(bounce(outcome=DeliveryOutcome.DELIVERED, code=250)) is None


LINK = TrackedLink(LinkKind.UNSUBSCRIBE, "m-1", 1, "Jane@Example.com", 7, "tok")


def test_unsubscribes_and_spam_reports_suppress_with_their_reason():
    link_unsub = engagement.unsubscribe(LINK, occurred_at=T0, one_click=False)
    one_click = engagement.unsubscribe(LINK, occurred_at=T0, one_click=True)
    assert (link_unsub.reason, one_click.reason) == (UnsubscribeReason.LINK, UnsubscribeReason.LIST_UNSUBSCRIBE)
    assert on_unsubscribe(link_unsub).reason == "UNSUBSCRIBED"
    msg = engagement.TrackedMessage("m-1", 1, ("jane@example.com", "boss@example.com"), 7, "tok")
    report, unsub = engagement.spam_report(msg, recipient="jane@example.com", occurred_at=T0, reporter="FBL")
    assert report.kind is EngagementKind.SPAM_REPORT and (report.email_id, report.smtp_token_id) == (7, "tok")
    assert (unsub.reason, unsub.recipient, unsub.account_id) == (UnsubscribeReason.SPAM_REPORT, "jane@example.com", 1)
    assert on_unsubscribe(unsub).reason == "SPAM_REPORT"


def test_a_spam_report_carries_the_messages_custom_args_and_categories():
    msg = engagement.TrackedMessage(
        "m-1", 1, ("jane@example.com",), custom_args={"order": "1001"}, categories=("receipt", "eu")
    )
    report, unsub = engagement.spam_report(msg, recipient="jane@example.com", occurred_at=T0, reporter=None)
    assert (report.custom_args, report.categories) == ({"order": "1001"}, ("receipt", "eu"))
    assert (unsub.custom_args, unsub.categories) == ({"order": "1001"}, ("receipt", "eu"))


def test_the_complaining_recipient_is_the_reported_one_when_it_is_ours():
    msg = engagement.TrackedMessage("m-1", 1, ("jane@example.com", "boss@example.com"))
    assert msg.recipient_for("Boss@Example.com") == "boss@example.com"
    assert msg.recipient_for("stranger@example.com") == "jane@example.com"
    assert msg.recipient_for(None) == "jane@example.com"


def test_link_events_carry_everything_analysts_need():
    click = TrackedLink(LinkKind.CLICK, "m-1", 1, "jane@example.com", 7, "tok", "https://shop.example/x")
    evt = engagement.from_link(click, occurred_at=T0, user_agent="UA", client_ip="192.0.2.1", machine=True)
    assert (evt.kind, evt.url, evt.user_agent, evt.client_ip, evt.machine) == (
        EngagementKind.CLICK,
        "https://shop.example/x",
        "UA",
        "192.0.2.1",
        True,
    )
    assert engagement.unsubscribe_key(1, "Jane@Example.com") == b"1:jane@example.com"
