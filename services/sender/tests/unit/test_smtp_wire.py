"""The bytes of an SMTP session (adapters/smtp_wire.py), and how its errors map to outcomes."""

import random
import re

import pytest

from mailstream.sender.adapters.smtp_wire import (
    CrlfMessage,
    Reply,
    ReplyParser,
    SmtpAddressError,
    SmtpConnectionLost,
    SmtpProtocolError,
    SmtpRecipientsRefused,
    SmtpReplyError,
    SmtpTimeout,
    data_payload,
    normalize_line_endings,
    parse_ehlo,
    path,
)
from mailstream.sender.outcomes import Bounced, Deferred, classify_smtp_error

# aiosmtplib's normalization (protocol.LINE_ENDINGS_REGEX), the reference the fast path must equal.
_REFERENCE = re.compile(rb"(?:\r\n|\n|\r(?!\n))")


def reference_normalization(message: bytes) -> bytes:
    message = _REFERENCE.sub(b"\r\n", message)
    return message if message.endswith(b"\r\n") else message + b"\r\n"


def unstuff(payload: bytes) -> bytes:
    """What a receiver keeps of a DATA payload (RFC 5321 4.5.2)."""
    assert payload.endswith(b"\r\n.\r\n")
    lines = payload[: -len(b".\r\n")].split(b"\r\n")
    return b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)


class TestReplyParser:
    def test_single_and_multi_line_replies(self):
        parser = ReplyParser()
        replies = parser.feed(b"250-mx.example greets you\r\n250-PIPELINING\r\n250 SIZE 1000\r\n354 go ahead\r\n")
        assert replies == [Reply(250, "mx.example greets you\nPIPELINING\nSIZE 1000"), Reply(354, "go ahead")]

    def test_a_reply_split_across_packets_comes_out_whole(self):
        parser = ReplyParser()
        assert parser.feed(b"250-first\r\n25") == [] and parser.pending
        assert parser.feed(b"0 2.0.0 Ok: queued as 12") == []
        assert parser.feed(b"34\r\n") == [Reply(250, "first\n2.0.0 Ok: queued as 1234")]
        assert not parser.pending

    def test_bare_lf_and_bare_codes_are_accepted(self):
        assert ReplyParser().feed(b"250 ok\n250\r\n221\n") == [Reply(250, "ok"), Reply(250, ""), Reply(221, "")]

    @pytest.mark.parametrize("garbage", [b"hello\r\n", b"25 short\r\n", b"250x no separator\r\n", b"x" * 9000])
    def test_anything_else_is_a_protocol_error(self, garbage):
        with pytest.raises(SmtpProtocolError):
            ReplyParser().feed(garbage)

    def test_endless_continuation_lines_are_refused(self):
        with pytest.raises(SmtpProtocolError):
            ReplyParser().feed(b"250-more\r\n" * 300)


def test_ehlo_keywords_are_lowercased_with_their_parameters():
    text = "mx.example at your service\nPIPELINING\nSIZE 10240000\nSTARTTLS\n8BITMIME\nsmtputf8\nAUTH PLAIN LOGIN"
    assert parse_ehlo(text) == {
        "pipelining": "",
        "size": "10240000",
        "starttls": "",
        "8bitmime": "",
        "smtputf8": "",
        "auth": "PLAIN LOGIN",
    }
    assert parse_ehlo("mx.example only a greeting") == {}


class TestPath:
    def test_an_address_and_the_null_path(self):
        assert path("jane@example.com") == b"<jane@example.com>" and path("") == b"<>"
        assert path("jürgen@bücher.example") == "<jürgen@bücher.example>".encode()

    @pytest.mark.parametrize(
        "address", ["a@b.example>\r\nRCPT TO:<c@d.example", "a@b.example SIZE=1", "<a@b.example>", "a\x00@b.example"]
    )
    def test_an_address_that_could_inject_commands_or_parameters_is_refused(self, address):
        with pytest.raises(SmtpAddressError) as refused:
            path(address)
        assert refused.value.code == 553


class TestLineEndings:
    @pytest.mark.parametrize(
        ("message", "normalized"),
        [
            (b"a\r\nb", b"a\r\nb\r\n"),
            (b"a\nb\r\n", b"a\r\nb\r\n"),
            (b"a\rb", b"a\r\nb\r\n"),
            (b"x\r\n\r\n.\r\n", b"x\r\n\r\n.\r\n"),
            (b"", b"\r\n"),
            (b"\r", b"\r\n"),
            (b"a\r\r\nb", b"a\r\n\r\nb\r\n"),
            (b"a\n\r\nb\r\n", b"a\r\n\r\nb\r\n"),
        ],
    )
    def test_bare_cr_and_lf_become_crlf_and_the_message_ends_with_one(self, message, normalized):
        assert normalize_line_endings(message) == normalized == reference_normalization(message)

    def test_equals_aiosmtplibs_normalization_on_random_messages(self):
        rng = random.Random(5321)
        for _ in range(5000):
            message = bytes(rng.choice(b"ab.\r\n") for _ in range(rng.randint(0, 24)))
            assert normalize_line_endings(message) == reference_normalization(message), message

    def test_a_message_already_checked_is_not_scanned_again(self):
        checked = CrlfMessage(b"a\r\nb\r\n")
        assert normalize_line_endings(checked) is checked


class TestDataPayload:
    @pytest.mark.parametrize(
        "message",
        [
            b"Subject: x\r\n\r\nplain\r\n",
            b".starts with a dot\r\n",
            b"a\r\n.\r\nb\r\n..\r\n...three\r\n",
            b"From: a@b.example\r\n\r\n.\r\n",
            b"".join(b"Header-%d: v.%d\r\n" % (n, n) for n in range(100)) + b"\r\n.late dot\r\n",  # past the hops
        ],
    )
    def test_the_receiver_gets_back_exactly_the_message(self, message):
        payload = data_payload(message)
        assert payload.endswith(b"\r\n.\r\n") and b"\r\n.\r\n" not in payload[:-3]
        assert unstuff(payload) == message

    def test_equals_a_regex_stuffing_on_random_messages(self):
        rng = random.Random(2920)
        for _ in range(5000):
            message = normalize_line_endings(bytes(rng.choice(b"a..\r\n") for _ in range(rng.randint(0, 40))))
            assert data_payload(message) == re.sub(rb"(?m)^\.", b"..", message) + b".\r\n", message


class TestErrorsToOutcomes:
    def test_4xx_and_lost_connections_defer_5xx_bounce(self):
        assert classify_smtp_error(SmtpReplyError(Reply(451, "4.3.0 try later"), "RCPT TO")) == Deferred(
            451, "4.3.0 try later"
        )
        assert classify_smtp_error(SmtpReplyError(Reply(552, "5.3.4 too big"), "MAIL FROM"), "mx") == Bounced(
            552, "5.3.4 too big", "mx"
        )
        assert classify_smtp_error(SmtpConnectionLost("connection lost")) == Deferred(None, "connection lost")
        assert classify_smtp_error(SmtpTimeout("no reply to DATA within 30 s")).code is None
        assert isinstance(classify_smtp_error(SmtpAddressError("5.1.3 bad")), Bounced)

    def test_when_every_recipient_is_refused_the_first_refusal_decides(self):
        refusals = [
            SmtpReplyError(Reply(450, "4.2.0 greylisted"), "RCPT TO", "a@x.example"),
            SmtpReplyError(Reply(550, "5.1.1 no such user"), "RCPT TO", "b@x.example"),
        ]
        assert classify_smtp_error(SmtpRecipientsRefused(refusals)) == Deferred(450, "4.2.0 greylisted")
        assert classify_smtp_error(SmtpRecipientsRefused(refusals[1:])) == Bounced(550, "5.1.1 no such user")
