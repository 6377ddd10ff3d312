"""SMTP tokens' pure logic: secrets, argon2, the verified-password cache, AUTH throttling, views."""

import base64
import dataclasses
from datetime import UTC, datetime

import pytest

from mailstream.gateway import tokens
from mailstream.gateway.tokens import AuthThrottle, TokenRow, VerifiedCache

TOKEN = TokenRow(
    id="abc123",
    account_id=7,
    password_hash="$argon2id$...",
    campaign_name="Receipts",
    email_campaign_id=10000042,
    create_contact=True,
    created_by="ops@shop.example",
    created_at=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
)


def test_passwords_carry_at_least_128_random_bits_and_ids_are_unique():
    passwords = {tokens.new_password() for _ in range(200)}
    assert len(passwords) == 200
    assert all(len(base64.urlsafe_b64decode(p + "==")) * 8 >= 128 for p in passwords)
    ids = {tokens.new_token_id() for _ in range(200)}
    assert len(ids) == 200 and all(set(i) <= set(tokens.ID_ALPHABET) and len(i) == tokens.ID_LENGTH for i in ids)


def test_passwords_are_stored_as_salted_argon2id_and_verified():
    password = tokens.new_password()
    first, second = tokens.hash_password(password), tokens.hash_password(password)
    assert first.startswith("$argon2id$") and first != second and password not in first
    assert tokens.verify_password(first, password)
    assert not tokens.verify_password(first, password + "x")
    assert not tokens.verify_password(None, password)  # unknown token: same work, refused
    assert not tokens.verify_password("not a hash", password)


def test_the_verified_cache_misses_once_the_stored_hash_changes():
    cache = VerifiedCache(size=2)
    cache.add("hash-1", "pw")
    assert cache.hit("hash-1", "pw") and not cache.hit("hash-1", "other") and not cache.hit("hash-2", "pw")
    cache.add("hash-2", "a")
    cache.add("hash-3", "b")
    assert not cache.hit("hash-1", "pw")  # evicted, least recently used


def test_auth_throttle_counts_failures_per_address_in_a_sliding_window():
    now = [1000.0]
    throttle = AuthThrottle(max_failures=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after("10.0.0.1") == 0
        throttle.failed("10.0.0.1")
        now[0] += 10
    assert throttle.retry_after("10.0.0.1") == pytest.approx(30)  # the first failure leaves at t=1060
    assert throttle.retry_after("10.0.0.2") == 0
    now[0] = 1060.0
    assert throttle.retry_after("10.0.0.1") == 0


def test_the_token_view_has_the_password_only_when_given():
    view = tokens.token_view(TOKEN)
    assert view == {
        "id": "abc123",
        "createdBy": "ops@shop.example",
        "emailCampaignId": "10000042",
        "createdAt": "2026-03-01T10:00:00.000Z",
        "createContact": True,
        "campaignName": "Receipts",
    }
    assert tokens.token_view(TOKEN, password="secret")["password"] == "secret"


def test_a_page_has_paging_next_after_only_when_there_is_more():
    second = dataclasses.replace(TOKEN, id="def456", email_campaign_id=10000043)
    page = tokens.page_view([TOKEN, second], 1, lambda after: f"/next?after={after}")
    assert [t["id"] for t in page["results"]] == ["abc123"]
    assert page["paging"] == {"next": {"after": "10000042", "link": "/next?after=10000042"}}
    assert "paging" not in tokens.page_view([TOKEN, second], 2, str)


@pytest.mark.parametrize("raw, parsed", [(None, 0), ("", 0), ("10000042", 10000042)])
def test_cursors_parse(raw, parsed):
    assert tokens.parse_cursor(raw) == parsed


@pytest.mark.parametrize("raw", ["abc", "-1", "1.5"])
def test_malformed_cursors_are_refused(raw):
    with pytest.raises(ValueError):
        tokens.parse_cursor(raw)


def test_statistics_are_zero_without_a_row_and_rates_are_unique_human_over_delivered():
    empty = tokens.statistics_view(TOKEN, None)
    assert set(empty["counters"].values()) == {0} and empty["ratios"] == {"openRate": 0.0, "clickRate": 0.0}
    row = {
        "sent": 10,
        "delivered": 8,
        "bounced": 2,
        "opens_total": 9,
        "opens_unique_human": 4,
        "opens_machine": 3,
        "clicks_total": 2,
        "clicks_unique_human": 2,
        "spam_reports": 1,
        "updated_at": TOKEN.created_at,
    }
    view = tokens.statistics_view(TOKEN, row)
    assert (
        view["counters"]["sent"] == 10 and view["counters"]["uniqueOpens"] == 4 and view["counters"]["spamReports"] == 1
    )
    assert view["ratios"] == {"openRate": 0.5, "clickRate": 0.25}
    assert view["tokenId"] == "abc123" and view["emailCampaignId"] == "10000042"
