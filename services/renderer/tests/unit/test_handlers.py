"""SendRequested -> EmailRendered through the handler with an in-memory email store."""

import email
import json
from datetime import UTC, datetime
from email.policy import default

from mailstream.renderer.handlers import EmailVersion, render_send
from mailstream.renderer.pools import Pool
from mailstream.renderer.render import compile_email
from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, EmailRendered, SendRequested, SubscriptionType

POOLS = {"shared": Pool("shared", ("127.0.0.9",), (1,))}


def version(**overrides):
    fields = dict(subject="Order {{ custom.order_id }}", html="<p>Hi {{ contact.firstname }}</p>", text=None)
    fields.update(overrides)
    return EmailVersion(
        email_id=5,
        version=1,
        from_name="Shop",
        from_email="orders@shop.example",
        reply_to=("help@shop.example",),
        subscription_type=SubscriptionType.TRANSACTIONAL,
        tracking=True,
        compiled=compile_email(fields["subject"], fields["html"], fields["text"]),
    )


def request(**overrides):
    fields = dict(
        message_id="m-1",
        status_id="s-1",
        account_id=1,
        to="jane@example.com",
        requested_at=datetime.now(UTC),
        email_id=5,
        email_version=1,
        cc=("cc@example.com",),
        bcc=("hidden@example.com",),
        contact_properties={"firstname": "Jäne"},
        custom_properties_json=json.dumps({"order_id": "1001"}),
    )
    fields.update(overrides)
    return SendRequested(**fields)


async def run(req, email_version):
    async def load(account_id, email_id, ver):
        return email_version if (email_id, ver) == (5, 1) else None

    return await render_send(req, load_email=load, pools=POOLS)


async def test_renders_a_mime_message_with_envelope_and_sending_ip():
    out = await run(request(), version())
    assert isinstance(out, EmailRendered)
    assert out.sending_ip == "127.0.0.9" and out.pool == "shared"
    assert out.recipients == ("jane@example.com", "cc@example.com", "hidden@example.com")
    assert out.mail_from == "orders@shop.example" and out.sending_domain == "shop.example"
    msg = email.message_from_bytes(out.mime, policy=default)
    assert msg["Subject"] == "Order 1001"
    assert msg["To"] == "jane@example.com" and msg["Cc"] == "cc@example.com"
    assert msg["Bcc"] is None  # only in the envelope
    assert msg["Reply-To"] == "help@shop.example"
    assert msg["Message-ID"] == "<m-1@shop.example>"
    assert msg["X-Mailstream-ID"] == "m-1"
    assert msg.get_content_type() == "multipart/alternative"
    assert "Hi Jäne" in msg.get_body(("html",)).get_content()
    assert "Hi Jäne" in msg.get_body(("plain",)).get_content()


async def test_an_unknown_email_is_dropped_as_missing_content():
    out = await run(request(email_version=2), version())
    assert isinstance(out, DeliveryAttempted)
    assert out.outcome is DeliveryOutcome.DROPPED and out.send_result == "MISSING_CONTENT"


async def test_a_missing_custom_property_is_dropped_with_its_result():
    out = await run(request(custom_properties_json="{}"), version())
    assert isinstance(out, DeliveryAttempted) and out.send_result == "MISSING_TEMPLATE_PROPERTIES"


async def test_the_from_override_wins():
    out = await run(request(from_override="Billing <billing@other.example>"), version())
    assert out.mail_from == "billing@other.example" and out.sending_domain == "other.example"
