"""SendRequested -> EmailRendered or DROPPED, through the handler with in-memory ports."""

import email
import json
from email.policy import default

import pytest
from renderer_fakes import NOW, RETURN_PATHS, SIGNER, TRACKING_BASE, ports, request, version

from mailstream.renderer.handlers import Unprocessable, render_send
from mailstream.renderer.rules import RecipientStatus
from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, EmailRendered, SubscriptionType
from mailstream.schemas.links import LinkKind


def parse(out: EmailRendered):
    return email.message_from_bytes(out.mime, policy=default)


async def test_renders_a_mime_message_with_envelope_and_sending_ip():
    out = await render_send(request(), ports())
    assert isinstance(out, EmailRendered)
    assert out.sending_ip == "127.0.0.9" and out.pool == "shared"
    assert out.recipients == ("jane@example.com", "cc@example.com", "hidden@example.com")
    assert out.sending_domain == "shop.example"
    assert out.mail_from.endswith("@bounces.shop.example") and RETURN_PATHS.message_id(out.mail_from) == out.message_id
    assert out.rendered_at == NOW and out.tracked is True
    assert out.subscription_type is SubscriptionType.TRANSACTIONAL
    msg = parse(out)
    assert msg["Subject"] == "Order 1001"
    assert msg["From"] == "Shop <orders@shop.example>"
    assert msg["To"] == "jane@example.com" and msg["Cc"] == "cc@example.com"
    assert msg["Bcc"] is None  # only in the envelope
    assert msg["Reply-To"] == "help@shop.example"
    assert msg["Message-ID"] == f"<{out.message_id}@shop.example>"
    assert msg["X-Mailstream-ID"] == out.message_id
    assert msg.get_content_type() == "multipart/alternative"
    assert "Hi Jäne" in msg.get_body(("html",)).get_content()
    assert "Hi Jäne" in msg.get_body(("plain",)).get_content()


async def test_transactional_mail_has_no_unsubscribe_link_or_header_and_ignores_statuses():
    status = RecipientStatus(
        properties={}, subscription_status="UNSUBSCRIBED", quarantined=True, double_opt_in="PENDING"
    )
    email_version = version(html="<p>{{ unsubscribe_link }}</p>")
    out = await render_send(request(), ports(email=email_version, status=status))
    assert isinstance(out, EmailRendered)
    msg = parse(out)
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert f"{TRACKING_BASE}/u/" not in msg.get_body(("html",)).get_content()


async def test_transactional_mail_leaves_from_the_accounts_dedicated_pool():
    out = await render_send(request(), ports(account_pools={1: "acme-dedicated"}))
    assert out.pool == "acme-dedicated" and out.sending_ip == "127.0.0.7"


async def test_marketing_mail_has_a_signed_unsubscribe_link_and_rfc8058_headers_and_the_shared_pool():
    email_version = version(
        subscription_type=SubscriptionType.MARKETING, html='<p>News</p><a href="{{ unsubscribe_link }}">Unsubscribe</a>'
    )
    out = await render_send(request(), ports(email=email_version, account_pools={1: "acme-dedicated"}))
    assert isinstance(out, EmailRendered)
    assert out.pool == "shared" and out.subscription_type is SubscriptionType.MARKETING
    msg = parse(out)
    unsubscribe = msg["List-Unsubscribe"].strip("<>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = SIGNER.verify(unsubscribe.rsplit("/", 1)[1])
    assert link.kind is LinkKind.UNSUBSCRIBE and link.recipient == "jane@example.com" and link.account_id == 1
    assert f'href="{unsubscribe}"' in msg.get_body(("html",)).get_content()  # not rewritten as a click


@pytest.mark.parametrize(
    ("status", "result"),
    [
        (RecipientStatus(properties={}, subscription_status="UNSUBSCRIBED"), "PREVIOUSLY_UNSUBSCRIBED_PORTAL"),
        (RecipientStatus(properties={}, bounced=True), "PREVIOUSLY_BOUNCED"),
        (RecipientStatus(properties={}, spam_reported=True), "PREVIOUS_SPAM"),
        (RecipientStatus(properties={}, suppressed=frozenset({"UNSUBSCRIBED"})), "PREVIOUSLY_UNSUBSCRIBED_PORTAL"),
        (RecipientStatus(properties={}, suppressed=frozenset({"BOUNCED"})), "PREVIOUSLY_BOUNCED"),
        (RecipientStatus(properties={}, suppressed=frozenset({"SPAM_REPORT"})), "PREVIOUS_SPAM"),
    ],
)
async def test_marketing_mail_to_a_blocked_contact_is_dropped_with_the_reason(status, result):
    out = await render_send(
        request(), ports(email=version(subscription_type=SubscriptionType.MARKETING), status=status)
    )
    assert isinstance(out, DeliveryAttempted)
    assert out.outcome is DeliveryOutcome.DROPPED and out.send_result == result
    assert out.status_id == "s-1" and out.recipient == "jane@example.com"


async def test_stored_contact_properties_merge_under_the_requests():
    status = RecipientStatus(properties={"firstname": "Stored", "city": "Oslo"})
    email_version = version(html="{{ contact.firstname }} in {{ contact.city }}")
    out = await render_send(request(), ports(email=email_version, status=status))
    assert "Jäne in Oslo" in parse(out).get_body(("html",)).get_content()


async def test_links_are_tracked_with_a_pixel_unless_tracking_is_off():
    out = await render_send(request(), ports())
    html = parse(out).get_body(("html",)).get_content()
    assert f'src="{TRACKING_BASE}/o/' in html and f'href="{TRACKING_BASE}/c/' in html
    assert "shop.example/o?id" not in html
    off = await render_send(request(), ports(email=version(tracking=False)))
    assert off.tracked is False
    html = parse(off).get_body(("html",)).get_content()
    assert TRACKING_BASE not in html and 'href="https://shop.example/o?id=1&amp;x=2"' in html


async def test_the_text_part_keeps_the_original_links():
    out = await render_send(request(), ports())
    assert "Order (https://shop.example/o?id=1&x=2)" in parse(out).get_body(("plain",)).get_content()


async def test_an_unknown_email_is_dropped_as_missing_content():
    out = await render_send(request(email_version=2), ports())
    assert isinstance(out, DeliveryAttempted) and out.send_result == "MISSING_CONTENT"


async def test_a_missing_custom_property_is_dropped_with_its_result():
    out = await render_send(request(custom_properties_json="{}"), ports())
    assert isinstance(out, DeliveryAttempted) and out.send_result == "MISSING_TEMPLATE_PROPERTIES"


async def test_a_sandbox_escape_is_dropped_as_a_render_exception():
    out = await render_send(request(), ports(email=version(html="{{ ''.__class__.__mro__ }}")))
    assert isinstance(out, DeliveryAttempted) and out.send_result == "TEMPLATE_RENDER_EXCEPTION"


async def test_corrupt_custom_properties_are_unprocessable():
    with pytest.raises(Unprocessable) as info:
        await render_send(request(custom_properties_json="{not json"), ports())
    assert info.value.result.value == "CORRUPT_INPUT"


async def test_the_from_override_wins():
    out = await render_send(request(from_override="Billing <billing@other.example>"), ports())
    assert out.mail_from.endswith("@bounces.other.example") and out.sending_domain == "other.example"
    assert parse(out)["From"] == "Billing <billing@other.example>"


async def test_a_personalized_from_name():
    out = await render_send(request(), ports(email=version(from_name="{{ contact.firstname }} at Shop")))
    assert parse(out)["From"] == "Jäne at Shop <orders@shop.example>"


@pytest.mark.parametrize("to", ["jane@example.com\r\nBcc: x@evil.example", "not-an-address", "a b@example.com"])
async def test_an_invalid_recipient_is_dropped(to):
    out = await render_send(request(to=to), ports())
    assert isinstance(out, DeliveryAttempted) and out.send_result == "INVALID_TO_ADDRESS"


async def test_an_invalid_from_override_is_dropped():
    out = await render_send(request(from_override="x\r\nBcc: y"), ports())
    assert isinstance(out, DeliveryAttempted) and out.send_result == "INVALID_FROM_ADDRESS"


async def test_crlf_in_every_property_never_creates_a_header():
    evil = "x\r\nBcc: victim@evil.example\r\nX-Injected: 1"
    email_version = version(subject="{{ custom.s }}", from_name="{{ contact.name }}", html="<p>{{ custom.s }}</p>")
    req = request(
        contact_properties={"name": evil},
        custom_properties_json=json.dumps({"s": evil, "order_id": "1"}),
    )
    out = await render_send(req, ports(email=email_version))
    msg = parse(out)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert "\n" not in msg["Subject"] and "Bcc: victim" in msg["Subject"]


async def test_an_email_whose_template_does_not_compile_is_dropped_as_a_render_exception(monkeypatch):
    from mailstream.renderer.render import RenderFailed, compile_email

    p = ports()
    with pytest.raises(RenderFailed) as failed:
        compile_email("x", "{% for %}", None)

    async def load_many(keys):
        return dict.fromkeys(keys, failed.value)  # what the adapter gives for a version that does not compile

    monkeypatch.setattr(p.emails, "load_many", load_many)
    out = await render_send(request(), p)
    assert isinstance(out, DeliveryAttempted) and out.send_result == "TEMPLATE_RENDER_EXCEPTION"


async def test_a_batch_looks_each_kind_of_fact_up_once():
    from mailstream.renderer.handlers import gather_facts, render_one

    p = ports()
    reqs = [request(message_id=f"3f0c6a4e-0000-4000-8000-00000000000{i}", to=f"r{i}@example.com") for i in range(5)]
    facts = await gather_facts(reqs, p)
    outs = [render_one(r, facts, p) for r in reqs]
    assert all(isinstance(o, EmailRendered) for o in outs)
    assert p.emails.asked == [{(1, 5, 1)}]
    assert p.recipients.asked == [(1, f"r{i}@example.com") for i in range(5)]


async def test_the_envelope_sender_is_the_signed_return_path_of_the_message():
    out = await render_send(request(), ports())
    local, _, domain = out.mail_from.partition("@")
    assert domain == "bounces.shop.example" and local.startswith("b-")
    assert RETURN_PATHS.message_id(out.mail_from) == out.message_id
    assert parse(out)["From"] == "Shop <orders@shop.example>"  # the header keeps the sender's address


async def test_a_message_id_that_is_not_a_uuid_keeps_the_from_address_as_envelope_sender():
    out = await render_send(request(message_id="smtp-1"), ports())
    assert out.mail_from == "orders@shop.example"
