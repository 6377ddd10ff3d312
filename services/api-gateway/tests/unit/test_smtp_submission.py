"""SMTP submission decisions without sockets: From domain, token re-check, send requests, replies,
and the token authenticator with a fake token store."""

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from mailstream.gateway import passwords
from mailstream.gateway.adapters.tokens_store import TokenRow
from mailstream.gateway.smtp.auth import Principal, TokenAuthenticator
from mailstream.gateway.smtp.submission import (
    Rejected,
    build_submission,
    check_token,
    from_domain,
    valid_recipient,
)
from mailstream.gateway.smtp.throttle import AuthThrottle
from mailstream.schemas import SendSource

NOW = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery-staple-0123"
TOKEN = TokenRow(
    id="tok1",
    account_id=7,
    password_hash=passwords.hash_password(PASSWORD),
    campaign_name="Receipts",
    email_campaign_id=10000042,
    create_contact=False,
    created_by="ops@shop.example",
    created_at=NOW,
)
RAW = b"From: Shop <Orders@Shop.Example>\r\nTo: a@example.com\r\nSubject: Hi\r\nX-Order: 1\r\n\r\nbody\r\n"


def test_the_from_domain_is_read_from_the_header_lower_cased():
    assert from_domain(RAW) == ("Shop <Orders@Shop.Example>", "shop.example")


@pytest.mark.parametrize(
    "raw",
    [
        b"To: a@example.com\r\n\r\nno from\r\n",
        b"From: a@x.example\r\nFrom: b@y.example\r\n\r\ntwo\r\n",
        b"From: a@x.example, b@y.example\r\n\r\ntwo addresses\r\n",
        b"From: nobody\r\n\r\nno domain\r\n",
        b"From: a@x.example\r\nSubject: hi\rX-Injected: cr\r\n\r\nbare CR\r\n",
        b"From: a@x.example\r\nSubject: hi\nBcc: v@victim.example\r\n\r\nbare LF\r\n",
    ],
)
def test_a_message_without_exactly_one_from_address_is_refused_with_550(raw):
    with pytest.raises(Rejected) as exc:
        from_domain(raw)
    assert exc.value.reply.startswith("550 ")


def test_a_reset_or_deleted_token_refuses_an_authenticated_session():
    principal = Principal(TOKEN.id, TOKEN.account_id, TOKEN.password_hash)
    assert check_token(principal, TOKEN) is TOKEN
    with pytest.raises(Rejected, match=r"^535 "):
        check_token(principal, None)
    with pytest.raises(Rejected, match=r"^535 "):
        check_token(Principal(TOKEN.id, TOKEN.account_id, "$argon2id$old"), TOKEN)


def test_each_recipient_is_one_smtp_sourced_send_request_with_the_token_and_campaign():
    submission = build_submission(TOKEN, ["a@example.com", "B@example.org"], RAW, "Shop <orders@shop.example>", NOW)
    events = submission.events
    assert [e.to for e in events] == ["a@example.com", "B@example.org"]
    assert len({e.message_id for e in events} | {e.status_id for e in events}) == 4
    for e in events:
        assert e.source is SendSource.SMTP and e.smtp_token_id == "tok1" and e.campaign_id == "10000042"
        assert e.raw_message == RAW and e.account_id == 7 and e.email_id is None and e.cc == () and e.bcc == ()
    assert submission.reply() == f"250 2.0.0 OK queued as {events[0].message_id} {events[1].message_id}"
    assert [(r.status_id, r.message_id, r.recipient, e) for r, e in submission.requests] == [
        (e.status_id, e.message_id, e.to, e) for e in events
    ]


def test_the_reply_stays_one_short_line_for_many_recipients():
    submission = build_submission(TOKEN, [f"r{i}@example.com" for i in range(50)], RAW, "x@shop.example", NOW)
    reply = submission.reply()
    assert len(reply) < 512 and reply.endswith("and 49 more") and submission.events[0].message_id in reply


@pytest.mark.parametrize(
    "address, ok",
    [
        ("a@example.com", True),
        ("a@localhost", False),
        ("a b@x.com", False),
        ("@x.com", False),
        ("a@x.com>", False),
        ("a\x00b@x.com", False),
        ("a\x01b@x.com", False),
        ("a\udcffb@x.com", False),  # an undecodable byte
        ("a\ufffdb@x.com", False),  # a byte replaced while decoding
        ('"ceo@else.example"@x.com', False),
    ],
)
def test_recipient_addresses_are_checked(address, ok):
    assert valid_recipient(address) is ok


class FakeTokens:
    def __init__(self, *rows: TokenRow) -> None:
        self.rows = {r.id: r for r in rows}

    async def load(self, token_id: str) -> TokenRow | None:
        return self.rows.get(token_id)


async def test_the_authenticator_accepts_the_token_password_and_refuses_others():
    auth = TokenAuthenticator(load_token=FakeTokens(TOKEN).load, throttle=AuthThrottle(max_failures=5, window_s=60))
    principal, reply = await auth.check("10.0.0.1", "tok1", PASSWORD)
    assert principal == Principal("tok1", 7, TOKEN.password_hash) and reply is None
    assert (await auth.check("10.0.0.1", "tok1", "wrong"))[1].startswith("535 5.7.8")
    assert (await auth.check("10.0.0.1", "nope", PASSWORD))[1].startswith("535 5.7.8")


async def test_the_authenticator_throttles_an_address_after_its_failures():
    auth = TokenAuthenticator(load_token=FakeTokens(TOKEN).load, throttle=AuthThrottle(max_failures=2, window_s=60))
    for _ in range(2):
        assert (await auth.check("10.0.0.9", "tok1", "wrong"))[1].startswith("535")
    principal, reply = await auth.check("10.0.0.9", "tok1", PASSWORD)
    assert principal is None and reply.startswith("454 4.7.0")
    assert (await auth.check("10.0.0.10", "tok1", PASSWORD))[0] is not None


async def test_parallel_guesses_from_one_address_are_throttled_while_they_are_checked():
    auth = TokenAuthenticator(load_token=FakeTokens(TOKEN).load, throttle=AuthThrottle(max_failures=5, window_s=60))
    replies = await asyncio.gather(*(auth.check("10.0.0.7", "tok1", f"guess{i}") for i in range(30)))
    assert sum(r.startswith("535") for _, r in replies) == 5
    assert sum(r.startswith("454") for _, r in replies) == 25


async def test_successes_do_not_count_against_the_address():
    auth = TokenAuthenticator(load_token=FakeTokens(TOKEN).load, throttle=AuthThrottle(max_failures=2, window_s=60))
    for _ in range(5):
        assert (await auth.check("10.0.0.8", "tok1", PASSWORD))[0] is not None


async def test_a_reset_password_misses_the_verified_cache():
    store = FakeTokens(TOKEN)
    auth = TokenAuthenticator(load_token=store.load, throttle=AuthThrottle(max_failures=5, window_s=60))
    assert (await auth.check("10.0.0.1", "tok1", PASSWORD))[0] is not None  # now cached
    new_password = passwords.new_password()
    store.rows["tok1"] = dataclasses.replace(TOKEN, password_hash=passwords.hash_password(new_password))
    assert (await auth.check("10.0.0.1", "tok1", PASSWORD))[0] is None
    assert (await auth.check("10.0.0.1", "tok1", new_password))[0] is not None
