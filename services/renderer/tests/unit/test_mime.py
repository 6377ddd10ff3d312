"""MIME bytes written directly, checked by parsing them back with the email package."""

import email
from datetime import UTC, datetime
from email.policy import default

import pytest

from mailstream.renderer.mime import (
    MAX_LINE,
    Headers,
    body_part,
    build_mime,
    format_mailbox,
    header_text,
    valid_address,
    wrap_html,
)

DATE = datetime(2026, 11, 28, 12, 30, tzinfo=UTC)


def headers(**overrides) -> Headers:
    fields = dict(
        message_id="m-1",
        sending_domain="shop.example",
        from_header=format_mailbox("Shop", "orders@shop.example"),
        to="jane@example.com",
        cc=(),
        reply_to=(),
        subject="Your receipt",
        date=DATE,
    )
    fields.update(overrides)
    return Headers(**fields)


def parsed(html="<p>hi</p>", text="hi\n", **overrides):
    raw = build_mime(headers(**overrides), html=html, text=text)
    return raw, email.message_from_bytes(raw, policy=default)


def test_a_multipart_alternative_with_the_standard_headers():
    _, msg = parsed(cc=("a@x.example", "b@x.example"), reply_to=("help@shop.example",))
    assert msg["Message-ID"] == "<m-1@shop.example>"
    assert msg["Date"].datetime == DATE
    assert msg["From"] == "Shop <orders@shop.example>"
    assert msg["To"] == "jane@example.com"
    assert msg["Cc"] == "a@x.example, b@x.example"
    assert msg["Reply-To"] == "help@shop.example"
    assert msg["X-Mailstream-ID"] == "m-1"
    assert msg["MIME-Version"] == "1.0" and msg["Bcc"] is None
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert not msg.defects and all(not p.defects for p in msg.iter_parts())


def test_every_line_ends_with_crlf_and_is_short():
    raw, _ = parsed(html="<p>" + "x" * 5000 + "</p>", subject="word " * 400)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_non_ascii_subject_from_name_and_bodies():
    raw, msg = parsed(
        html="<p>Grüße, Zoë — 東京 🎉</p>",
        text="Grüße, Zoë — 東京 🎉\n",
        subject="Ihre Bestellung: Grüße aus Köln 🎉 " * 3,
        from_header=format_mailbox("Müller & Söhne, GmbH", "orders@shop.example"),
    )
    assert raw.isascii()  # RFC 2047 headers, base64 bodies
    assert msg["Subject"] == ("Ihre Bestellung: Grüße aus Köln 🎉 " * 3).strip()
    assert msg["From"].addresses[0].display_name == "Müller & Söhne, GmbH"
    assert msg["From"].addresses[0].addr_spec == "orders@shop.example"
    assert msg.get_body(("html",)).get_content() == "<p>Grüße, Zoë — 東京 🎉</p>"
    assert msg.get_body(("plain",)).get_content() == "Grüße, Zoë — 東京 🎉\r\n"


def test_a_quoted_from_name_with_specials():
    _, msg = parsed(from_header=format_mailbox('Shop "Best" <Deals>', "orders@shop.example"))
    assert msg["From"].addresses[0].display_name == 'Shop "Best" <Deals>'


@pytest.mark.parametrize(
    "evil",
    [
        "Hi\r\nBcc: victim@evil.example",
        "Hi\nBcc: victim@evil.example",
        "Hi\rBcc: victim@evil.example",
        "Hi\r\n\r\n<html>body injection",
        "Hi\x00\x0bX",
    ],
)
def test_crlf_in_subject_or_name_never_creates_a_header(evil):
    raw, msg = parsed(subject=evil, from_header=format_mailbox(evil, "orders@shop.example"))
    assert msg["Bcc"] is None
    assert not any(line.lower().startswith(b"bcc") for line in raw.split(b"\r\n"))
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg.get_body(("html",)).get_content() == "<p>hi</p>"


def test_extra_headers_are_single_lines():
    _, msg = parsed(extra=(("List-Unsubscribe", "<https://t.example/u/abc>"), ("List-Unsubscribe-Post", "x\r\nBcc: y")))
    assert msg["List-Unsubscribe"] == "<https://t.example/u/abc>"
    assert msg["List-Unsubscribe-Post"] == "x Bcc: y" and msg["Bcc"] is None


def test_long_recipient_lists_are_folded():
    cc = tuple(f"person{i}@example.com" for i in range(60))
    _, msg = parsed(cc=cc)
    assert [a.addr_spec for a in msg["Cc"].addresses] == list(cc)


def test_an_encoded_word_lookalike_in_the_subject_stays_literal():
    _, msg = parsed(subject="=?utf-8?b?QmNjOiB4?= hello")
    assert msg["Subject"] == "=?utf-8?b?QmNjOiB4?= hello"


@pytest.mark.parametrize(
    ("address", "ok"),
    [
        ("jane@example.com", True),
        ("jane.o'neil+tag@sub.example.co.uk", True),
        ("jane@example.com\r\nBcc: x@y.z", False),
        ("Jane <jane@example.com>", False),
        ("jane@", False),
        ("jane@localhost", False),
        ("jäne@example.com", False),
        ("", False),
    ],
)
def test_valid_address(address, ok):
    assert valid_address(address) is ok


def test_header_text_collapses_control_characters():
    assert header_text(" a\r\n\tb\x00c ") == "a b c"


def test_an_encoded_word_lookalike_in_the_from_name_stays_literal():
    _, msg = parsed(from_header=format_mailbox("=?utf-8?b?QmFuaw==?=", "orders@shop.example"))
    assert msg["From"].addresses[0].display_name == "=?utf-8?b?QmFuaw==?="


def test_huge_personalized_subjects_and_names_are_cut():
    _, msg = parsed(subject="s" * 100_000, from_header=format_mailbox("n" * 100_000, "orders@shop.example"))
    assert len(msg["Subject"].strip()) == 1000 and len(msg["From"].addresses[0].display_name) == 1000


# ---- body encodings: the smallest the content allows ------------------------------------------


def encodings(msg) -> list[str]:
    return [p["Content-Transfer-Encoding"] for p in msg.iter_parts()]


def test_ascii_bodies_within_the_line_limit_go_as_7bit_unchanged():
    html = "<p>Hi</p>\n<p>.a line starting with a dot</p>\n"
    _, msg = parsed(html=html, text="Hello\n.dot\n\nbye\n")
    assert encodings(msg) == ["7bit", "7bit"]
    assert msg.get_body(("html",)).get_content().replace("\r\n", "\n") == html
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "Hello\n.dot\n\nbye\n"


def test_a_long_html_line_is_wrapped_only_between_a_tag_name_and_its_attributes():
    cells = "".join(f'<td style="padding:4px" class="c{i}">cell {i} with some text</td>' for i in range(300))
    html = f"<table><tr>{cells}</tr></table>"
    raw, msg = parsed(html=html)
    assert encodings(msg)[1] == "7bit"
    assert max(len(line) for line in raw.split(b"\r\n")) <= MAX_LINE
    body = msg.get_body(("html",)).get_content()
    assert body.replace("\r\n", " ") == html  # each break replaced one space inside a tag
    for line in body.splitlines()[1:]:
        assert line.startswith('style="padding:4px"')


def test_wrapping_gives_up_where_no_tag_has_an_attribute():
    assert wrap_html(b"<p>" + b"x" * 2000 + b"</p>") is None
    assert wrap_html(b"<br>" * 600) is None


def test_ascii_that_cannot_be_wrapped_goes_quoted_printable():
    html = "<p>" + "word=" * 400 + "</p>"
    raw, msg = parsed(html=html)
    assert encodings(msg)[1] == "quoted-printable"
    assert msg.get_body(("html",)).get_content() == html
    html_part = raw.split(b"quoted-printable\r\n\r\n")[1].split(b"\r\n--")[0]
    assert max(len(line) for line in html_part.split(b"\r\n")) <= 76


def test_non_ascii_bodies_go_base64():
    encoding, body = body_part("Grüße\n", html=False)
    assert encoding == "base64" and body.isascii()


def test_a_7bit_body_is_much_smaller_than_base64():
    html = "".join(f'<p style="color:#555">Paragraph {n} <a href="https://x.example/{n}">x</a></p>' for n in range(200))
    _, body = body_part(html, html=True)
    assert len(body) < len(html) * 1.01
