"""Whole messages from the SMTP ingress: not merged, headers kept, HTML parts tracked."""

import email
from email.message import EmailMessage
from email.policy import SMTP, default

import pytest
from renderer_fakes import NOW, RETURN_PATHS, SIGNER, TRACKING_BASE, ports, request

from mailstream.renderer.handlers import Unprocessable, render_send
from mailstream.schemas import EmailRendered, SendSource, SubscriptionType


def smtp_message() -> bytes:
    msg = EmailMessage()
    msg["From"] = "Shop <orders@shop.example>"
    msg["To"] = "jane@example.com"
    msg["Bcc"] = "hidden@example.com"
    msg["Subject"] = "Ihre Bestellung {{ custom.x }}"
    msg["X-Custom"] = "kept"
    msg["X-Mailstream-ID"] = "spoofed"
    msg.set_content("Plain {{ contact.firstname }} https://shop.example/a")
    msg.add_alternative(
        '<p>Grüße</p><a href="https://shop.example/a">a</a><a href="mailto:x@y.z">m</a>', subtype="html"
    )
    msg.add_attachment(
        b"<html><a href='https://att.example'>x</a></html>", maintype="text", subtype="html", filename="page.html"
    )
    return msg.as_bytes(policy=SMTP)


def smtp_request(raw: bytes, **overrides):
    fields = dict(
        raw_message=raw,
        source=SendSource.SMTP,
        smtp_token_id="tok-1",
        email_id=None,
        email_version=None,
        from_override="orders@shop.example",
        cc=(),
        bcc=("hidden@example.com",),
        custom_properties_json="{}",
    )
    fields.update(overrides)
    return request(**fields)


async def test_a_whole_message_keeps_its_headers_and_gets_tracking():
    out = await render_send(smtp_request(smtp_message()), ports(account_pools={1: "acme-dedicated"}))
    assert isinstance(out, EmailRendered)
    assert out.subscription_type is SubscriptionType.TRANSACTIONAL and out.pool == "acme-dedicated"
    assert out.smtp_token_id == "tok-1" and out.tracked
    assert out.recipients == ("jane@example.com", "hidden@example.com")
    msg = email.message_from_bytes(out.mime, policy=default)
    assert msg["Subject"] == "Ihre Bestellung {{ custom.x }}"  # not merged
    assert msg["X-Custom"] == "kept" and msg["Bcc"] is None
    assert msg.get_all("X-Mailstream-ID") == [out.message_id]
    assert msg["Message-ID"] == f"<{out.message_id}@shop.example>" and msg["Date"]
    assert msg.get_body(("plain",)).get_content().startswith("Plain {{ contact.firstname }}")
    html = msg.get_body(("html",)).get_content()
    assert "<p>Grüße</p>" in html and 'href="mailto:x@y.z"' in html
    assert f'href="{TRACKING_BASE}/c/' in html and f'src="{TRACKING_BASE}/o/' in html
    click = SIGNER.verify(html.split(f"{TRACKING_BASE}/c/", 1)[1].split('"', 1)[0])
    assert click.url == "https://shop.example/a" and click.smtp_token_id == "tok-1" and click.email_id is None
    attachment = next(msg.iter_attachments())
    assert "https://att.example" in attachment.get_content()  # attachments are not touched


async def test_an_existing_message_id_and_date_are_kept():
    raw = (
        b"From: a@shop.example\r\nTo: jane@example.com\r\nMessage-ID: <own@shop.example>\r\n"
        b"Date: Fri, 27 Nov 2026 10:00:00 +0000\r\nSubject: x\r\n\r\nbody\r\n"
    )
    out = await render_send(smtp_request(raw, from_override=None), ports())
    msg = email.message_from_bytes(out.mime, policy=default)
    assert msg["Message-ID"] == "<own@shop.example>" and msg["Date"] == "Fri, 27 Nov 2026 10:00:00 +0000"
    assert RETURN_PATHS.address(out.message_id, "bounces.shop.example") == out.mail_from and out.rendered_at == NOW
    assert msg.get_content().strip() == "body"


async def test_a_message_without_a_sender_is_dropped():
    out = await render_send(smtp_request(b"Subject: x\r\n\r\nbody\r\n", from_override=None), ports())
    assert out.send_result == "INVALID_FROM_ADDRESS"


async def test_a_message_that_cannot_be_serialized_is_unprocessable(monkeypatch):
    import mailstream.renderer.whole as whole

    def boom(*args, **kwargs):
        raise UnicodeEncodeError("ascii", "x", 0, 1, "bad")

    monkeypatch.setattr(whole._CheckedGenerator, "flatten", boom)
    with pytest.raises(Unprocessable) as info:
        await render_send(smtp_request(b"From: a@shop.example\r\n\r\nx\r\n"), ports())
    assert info.value.result.value == "CORRUPT_INPUT"


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: " + b"word " * 30 + b"=?utf-8?b?YQ0KWC1JbmplY3RlZDogMQ==?=",  # decodes to "a\r\nX-Injected: 1"
        b"X-Note: " + b"word " * 30 + b"=?utf-8?b?YQ0KQmNjOiB2aWN0aW1AdmljdGltLmV4YW1wbGU=?=",  # "\r\nBcc: victim@..."
    ],
)
async def test_a_header_that_would_refold_into_a_new_header_is_refused(header):
    raw = b"From: orders@shop.example\r\nTo: jane@example.com\r\n" + header + b"\r\n\r\nbody\r\n"
    with pytest.raises(Unprocessable) as refused:
        await render_send(smtp_request(raw), ports())
    assert refused.value.result == "CORRUPT_INPUT" and "more than one header line" in refused.value.reason


@pytest.mark.parametrize(
    ("value", "pixel", "links"),
    [
        ("opens=off; clicks=on", False, True),
        ("opens=on; clicks=off", True, False),
        ("opens=off; clicks=off", False, False),
    ],
)
async def test_the_tracking_header_turns_off_the_pixel_or_the_links_and_is_removed(value, pixel, links):
    raw = smtp_message().replace(b"X-Custom: kept", f"X-Custom: kept\r\nX-Mailstream-Tracking: {value}".encode())
    out = await render_send(smtp_request(raw), ports())
    msg = email.message_from_bytes(out.mime, policy=default)
    html = msg.get_body(("html",)).get_content()
    assert msg["X-Mailstream-Tracking"] is None
    assert ('width="1" height="1"' in html) is pixel
    assert (TRACKING_BASE in html.split("<img")[0]) is links


async def test_custom_args_are_carried_onto_the_rendered_message_and_a_drop():
    args = {"order": "1001"}
    out = await render_send(smtp_request(smtp_message(), custom_args=args), ports())
    assert out.custom_args == args
    bad = await render_send(smtp_request(smtp_message(), custom_args=args, to="not an address"), ports())
    assert bad.outcome.value == "DROPPED" and bad.custom_args == args
