"""Whole messages the gateway built (SendGrid API, source API): finished with byte operations
(built.py) into the same message as the `email` package's path (whole.py) makes; anything not in
the builder's form takes that path."""

import base64
import email
from email.policy import default

import pytest
from renderer_fakes import NOW, SIGNER, TRACKING_BASE, ports, request

from mailstream.renderer.built import prepare_built
from mailstream.renderer.handlers import render_send
from mailstream.renderer.tracking import Recipient, Tracker
from mailstream.renderer.whole import prepare_whole
from mailstream.schemas import EmailRendered, SendSource

TEXT, HTML_TYPE = 'text/plain; charset="utf-8"', 'text/html; charset="utf-8"'
HTML = '<p>Grüße</p><a href="https://shop.example/o/1">order</a>'


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode().replace("\n", "\r\n")


def part(kind: str, data: bytes, extra: str = "") -> str:
    return f"Content-Type: {kind}\r\nContent-Transfer-Encoding: base64\r\n{extra}\r\n{b64(data)}"


def built(*, tracking: str = "", extra_header: str = "") -> bytes:
    """A message as the gateway's sendgrid/message.py writes one."""
    text = part(TEXT, b"Hi https://shop.example/o/1")
    html = part(HTML_TYPE, HTML.encode())
    alt = (
        f'Content-Type: multipart/alternative; boundary="=_a"\r\n\r\n--=_a\r\n{text}\r\n--=_a\r\n{html}\r\n--=_a--\r\n'
    )
    attached = part('text/html; name="page.html"', b"<a href='https://att.example'>x</a>",
                    'Content-Disposition: attachment; filename="page.html"\r\n')  # fmt: skip
    head = (
        "From: Shop <orders@shop.example>\r\nTo: jane@example.com\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
        f"MIME-Version: 1.0\r\nX-Order: 1001\r\n{tracking}{extra_header}"
    )
    body = f'Content-Type: multipart/mixed; boundary="=_m"\r\n\r\n--=_m\r\n{alt}\r\n--=_m\r\n{attached}\r\n--=_m--\r\n'
    return (head + body).encode()


WHO = Recipient("m-1", 1, "jane@example.com")


def finish(raw: bytes, fast: bool):
    tracker = Tracker(SIGNER, TRACKING_BASE)
    how = dict(message_id="m-1", sending_domain="shop.example", date=NOW,
               track=lambda html, **wanted: tracker.track_html(html, WHO, **wanted))  # fmt: skip
    return prepare_built(raw, **how) if fast else prepare_whole(raw, **how)


def html_of(mime: bytes) -> str:
    return email.message_from_bytes(mime, policy=default).get_body(("html",)).get_content()


@pytest.mark.parametrize("tracking", ["", "X-Mailstream-Tracking: opens=off; clicks=on\r\n"])
def test_the_fast_path_makes_the_message_the_email_package_makes(tracking):
    fast, slow = finish(built(tracking=tracking), True), finish(built(tracking=tracking), False)
    assert fast is not None and fast.from_address == slow.from_address == "orders@shop.example"
    a, b = (email.message_from_bytes(w.mime, policy=default) for w in (fast, slow))
    for name in ("X-Mailstream-ID", "Message-ID", "Date", "From", "To", "Subject", "X-Order"):
        assert a.get_all(name) == b.get_all(name), name
    assert a["X-Mailstream-Tracking"] is None and a["Message-ID"] == "<m-1@shop.example>"
    assert html_of(fast.mime) == html_of(slow.mime) and TRACKING_BASE in html_of(fast.mime)
    assert ('width="1"' in html_of(fast.mime)) is (tracking == "")
    attachment = next(a.iter_attachments())
    assert attachment.get_content() == "<a href='https://att.example'>x</a>"  # an attachment is not tracked
    assert a.get_body(("plain",)).get_content() == "Hi https://shop.example/o/1"


@pytest.mark.parametrize(
    "header", ["Bcc: hidden@example.com\r\n", "Message-ID: <x@y>\r\n", "X-Mailstream-ID: spoof\r\n", "X-Bad: a\nb\r\n"]
)
def test_a_message_not_in_the_builders_form_is_left_to_the_email_package(header):
    assert finish(built(extra_header=header), True) is None


async def test_an_api_message_takes_the_fast_path_and_an_smtp_one_does_not():
    fields = dict(raw_message=built(), email_id=None, email_version=None, from_override="orders@shop.example")
    api = await render_send(request(**fields, source=SendSource.API), ports())
    smtp = await render_send(request(**fields, source=SendSource.SMTP), ports())
    assert isinstance(api, EmailRendered) and isinstance(smtp, EmailRendered)
    assert api.mime.startswith(b"X-Mailstream-ID: ") and not smtp.mime.startswith(b"X-Mailstream-ID: ")
    assert html_of(api.mime) == html_of(smtp.mime)
