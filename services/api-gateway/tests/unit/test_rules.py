"""The send rules: transactional bypass, marketing refusals, addresses, templates."""

import pytest

from mailstream.gateway.rules import (
    EmailFacts,
    RecipientFacts,
    from_domain,
    has_unsubscribe_link,
    html_to_text,
    is_role_address,
    refusal,
    valid_address,
    valid_from,
)
from mailstream.schemas import SendResult

TRANSACTIONAL = EmailFacts(state="DRAFT", single_send_api=True, subscription_type="TRANSACTIONAL")
MARKETING = EmailFacts(state="PUBLISHED", single_send_api=True, subscription_type="MARKETING")
UNSUBSCRIBED = RecipientFacts(subscription_status="UNSUBSCRIBED")
QUARANTINED = RecipientFacts(quarantined=True)
DOI_PENDING = RecipientFacts(double_opt_in="PENDING")
ANYONE = RecipientFacts()


def decide(email=TRANSACTIONAL, to="jane@example.com", recipient=ANYONE, from_=None, require=True):
    return refusal(email=email, require_single_send_api=require, to=to, from_=from_, recipient=recipient)


def test_a_transactional_email_reaches_an_unsubscribed_contact():
    assert decide(recipient=UNSUBSCRIBED) is None
    assert decide(recipient=RecipientFacts(suppressions=frozenset({"UNSUBSCRIBED"}))) is None


def test_a_transactional_email_reaches_a_quarantined_contact():
    assert decide(recipient=QUARANTINED) is None


def test_a_transactional_email_reaches_a_contact_whose_double_opt_in_is_pending():
    assert decide(recipient=DOI_PENDING) is None


@pytest.mark.parametrize(
    ("recipient", "result"),
    [
        (UNSUBSCRIBED, SendResult.PREVIOUSLY_UNSUBSCRIBED_PORTAL),
        (RecipientFacts(suppressions=frozenset({"UNSUBSCRIBED"})), SendResult.PREVIOUSLY_UNSUBSCRIBED_PORTAL),
        (QUARANTINED, SendResult.QUARANTINED_ADDRESS),
        (DOI_PENDING, SendResult.EMAIL_UNCONFIRMED),
        (RecipientFacts(bounced=True), SendResult.PREVIOUSLY_BOUNCED),
        (RecipientFacts(spam_reported=True), SendResult.PREVIOUS_SPAM),
    ],
)
def test_a_marketing_email_is_refused_for_each_status(recipient, result):
    assert decide(email=MARKETING, recipient=recipient) == result


@pytest.mark.parametrize("email", [TRANSACTIONAL, MARKETING])
@pytest.mark.parametrize("others", [frozenset(), frozenset({"BOUNCED", "SPAM_REPORT", "UNSUBSCRIBED"})])
def test_a_manual_suppression_blocks_both_kinds_before_any_other_reason(email, others):
    blocked = RecipientFacts(bounced=True, suppressions=others | {"MANUAL"})
    assert decide(email=email, recipient=blocked) == SendResult.BLOCKED_ADDRESS


def test_without_a_manual_suppression_a_transactional_email_still_goes_to_an_unsubscribed_address():
    assert decide(recipient=RecipientFacts(suppressions=frozenset({"UNSUBSCRIBED"}))) is None
    assert decide(recipient=RecipientFacts(suppressions=frozenset({"BOUNCED"}))) == SendResult.PREVIOUSLY_BOUNCED


def test_a_marketing_email_reaches_a_subscribed_confirmed_contact():
    assert decide(email=MARKETING, recipient=RecipientFacts("SUBSCRIBED", double_opt_in="CONFIRMED")) is None


@pytest.mark.parametrize("email", [TRANSACTIONAL, MARKETING])
def test_a_previous_bounce_or_spam_report_stops_every_send(email):
    assert decide(email=email, recipient=RecipientFacts(suppressions=frozenset({"BOUNCED"}))) == "PREVIOUSLY_BOUNCED"
    assert decide(email=email, recipient=RecipientFacts(suppressions=frozenset({"SPAM_REPORT"}))) == "PREVIOUS_SPAM"


def test_unknown_unconverted_or_archived_email_is_missing_content():
    assert decide(email=None) == SendResult.MISSING_CONTENT
    assert decide(email=EmailFacts("DRAFT", False, "TRANSACTIONAL")) == SendResult.MISSING_CONTENT
    assert decide(email=EmailFacts("ARCHIVED", True, "TRANSACTIONAL")) == SendResult.MISSING_CONTENT
    assert decide(email=EmailFacts("DRAFT", False, "TRANSACTIONAL"), require=False) is None  # one-off send


@pytest.mark.parametrize("to", ["noreply@example.com", "Postmaster@example.com", "abuse@x.example", "jane", "a@b"])
def test_bad_or_role_recipients_are_invalid_to_address(to):
    assert decide(to=to) == SendResult.INVALID_TO_ADDRESS


def test_a_bad_from_is_invalid_from_address():
    assert decide(from_="Shop <orders@shop.example>") is None
    assert decide(from_="not an address") == SendResult.INVALID_FROM_ADDRESS
    assert not valid_from("x@y.example\r\nBcc: z@w.example")


def test_address_shapes():
    assert valid_address("jane.doe+tag@mail.example.com")
    for bad in ("jane@localhost", "a@b.example\r\nBcc: x@y.example", "Jane <jane@example.com>", "@x.com", "a..b@x.com"):
        assert not valid_address(bad), bad
    assert is_role_address("no-reply@x.example") and not is_role_address("jane@x.example")


def test_unsubscribe_link_detection():
    assert has_unsubscribe_link("<p>{{ unsubscribe_link }}</p>")
    assert has_unsubscribe_link('<a href="https://shop.example/unsubscribe?u=1">stop</a>')
    assert not has_unsubscribe_link("<p>Buy now</p><a href='https://shop.example'>shop</a>")


def test_text_is_derived_from_html():
    html = "<html><head><style>p{}</style></head><body><h1>Order</h1><p>Thanks, <b>Jane</b>.</p>"
    html += "<ul><li>A1 x 2</li></ul><p><a href='https://s.example/o/1'>View</a></p></body></html>"
    assert html_to_text(html) == "Order\n\nThanks, Jane.\n\n- A1 x 2\n\nView (https://s.example/o/1)"


def test_an_unverified_from_domain_ends_the_send_only_when_the_check_is_on():
    assert decide(from_="Shop <orders@shop.example>") is None  # check off (None)
    result = refusal(
        email=TRANSACTIONAL,
        require_single_send_api=True,
        to="a@x.example",
        from_=None,
        recipient=ANYONE,
        sending_domain_ok=False,
    )
    assert result == SendResult.UNCONFIGURED_SENDING_DOMAIN
    assert from_domain("Shop <Orders@Shop.Example>") == "shop.example" and from_domain(None) is None
