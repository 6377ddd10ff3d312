"""API key scopes (403 MISSING_SCOPES) and per-key request limits (429 RATE_LIMITS), through the
app and the single-send fast path with the key in the cache: no database, no Kafka."""

import httpx
import pytest

from mailstream.gateway.app import create_app
from mailstream.gateway.caches import Caches
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.fast_paths import FastPaths
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.keys import KeyGrant, hash_api_key
from mailstream.gateway.limits import RateLimiter, RateSpec
from mailstream.gateway.scopes import (
    ADMIN,
    ALL_SCOPES,
    CONTACTS,
    EMAILS,
    ROUTE_SCOPES,
    SEND,
    STATS,
    TOKENS,
    parse_scopes,
    scope_of,
)

SEND_PATH = "/marketing/v3/transactional/single-email/send"
TOKENS_PATH = "/marketing/v3/transactional/smtp-tokens"


class NoPool:
    def __getattr__(self, name):
        raise AssertionError(f"the database was used ({name})")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(grants: dict[str, KeyGrant], *, limiter: RateLimiter | None = None) -> httpx.AsyncClient:
    caches = Caches(api_key_ttl_s=60)
    caches.set_listening(True)
    for key, grant in grants.items():
        caches.remember_key(hash_api_key(key), grant)
    deps = Dependencies(pool=NoPool(), kafka=KafkaLink(bootstrap="unused:1"), caches=caches)
    if limiter is not None:
        deps.limiter = limiter
    app = FastPaths(create_app(deps), deps)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---- the pure parts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "scope"),
    [
        (SEND_PATH, SEND),
        ("/marketing/transactional/2026-03/single-email/send", SEND),
        ("/marketing/v3/email/send-statuses/{status_id}", SEND),
        ("/mailstream/v1/sends/{status_id}/cancel", SEND),
        ("/v3/mail/batch/{batch_id}", SEND),
        ("/v3/user/scheduled_sends/{batch_id}", SEND),
        ("/mailstream/v1/emails/{email_id}/send", SEND),
        ("/mailstream/v1/emails/{email_id}/publish", EMAILS),
        ("/mailstream/v1/emails", EMAILS),
        (TOKENS_PATH, TOKENS),
        ("/marketing/transactional/2026-03/smtp-tokens/{token_id}/password-reset", TOKENS),
        ("/mailstream/v1/contacts/{email}", CONTACTS),
        ("/crm/v3/objects/contacts/{contact_id}", CONTACTS),
        ("/mailstream/v1/suppressions/{email}/unbounce", CONTACTS),
        ("/mailstream/v1/stats", STATS),
        ("/email/public/v1/events", STATS),
        ("/mailstream/v1/api-keys/{key_id}", ADMIN),
        ("/mailstream/v1/sending-domains", ADMIN),
        ("/mailstream/v1/something-new", ADMIN),  # an operation no rule names needs admin
    ],
)
def test_each_operation_needs_its_scope(path, scope):
    assert scope_of(path) == scope


def test_every_api_route_has_a_scope_rule_of_its_own():
    app = create_app(Dependencies(pool=NoPool(), kafka=KafkaLink(bootstrap="unused:1")))
    paths = list(app.openapi()["paths"])  # app.routes does not list the included routers' routes
    assert "/mailstream/v1/one-off-sends" in paths and "/mailstream/v1/triggers" in paths
    unnamed = [
        path
        for path in paths
        if path.startswith(("/marketing", "/mailstream", "/crm", "/email", "/v3/"))
        and not any(p.search(path) for p, _ in ROUTE_SCOPES)
    ]
    assert unnamed == [], "add these routes to scopes.ROUTE_SCOPES"


def test_scopes_are_named_ours_or_hubspots():
    assert parse_scopes(["send", " stats "]) == {SEND, STATS}
    assert parse_scopes(["transactional-email"]) == {SEND, TOKENS}
    assert parse_scopes(["crm.objects.contacts.read", "content"]) == {CONTACTS, EMAILS}
    with pytest.raises(ValueError, match=r"unknown scope.*sendd"):
        parse_scopes(["send", "sendd"])
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes([""])


@pytest.mark.parametrize(
    ("text", "limit", "interval_ms"),
    [
        ("100/10s", 100, 10_000),
        ("1_000/min", 1000, 60_000),
        ("5/s", 5, 1000),
        ("50 / 250ms", 50, 250),
        ("1/h", 1, 3_600_000),
    ],
)
def test_rate_limits_are_written_limit_per_interval(text, limit, interval_ms):
    assert RateSpec.parse(text) == RateSpec(limit, interval_ms)


@pytest.mark.parametrize("text", ["0/10s", "10/0s", "10", "10/10x", "ten/s", "-1/s"])
def test_a_malformed_rate_limit_is_refused(text):
    with pytest.raises(ValueError, match="rate limit"):
        RateSpec.parse(text)


def test_a_window_allows_its_limit_then_refuses_until_it_ends():
    clock = Clock()
    limiter = RateLimiter(default=RateSpec(3, 10_000), clock=clock)
    assert [limiter.take(1).remaining for _ in range(3)] == [2, 1, 0]
    refused = limiter.take(1)
    assert not refused.allowed and refused.remaining == 0 and refused.retry_after_s == 10
    assert limiter.take(2).allowed  # another key has its own window
    clock.now += 7.5
    assert limiter.take(1).retry_after_s == 3  # rounded up to whole seconds
    clock.now += 2.5
    assert limiter.take(1).allowed and limiter.take(1, RateSpec(1, 10_000)).allowed is False  # the key's own limit


# ---- through the app ----------------------------------------------------------------------------


async def test_a_key_without_the_scope_gets_403_missing_scopes_in_hubspot_shape():
    grants = {"ms_tokens-only": KeyGrant(7, 1, frozenset({TOKENS}))}
    async with client(grants) as api:
        for method, path in (("POST", SEND_PATH), ("GET", "/mailstream/v1/stats"), ("GET", "/mailstream/v1/api-keys")):
            reply = await api.request(method, path, headers=bearer("ms_tokens-only"), json={})
            body = reply.json()
            assert reply.status_code == 403, (path, body)
            assert body["status"] == "error" and body["category"] == "MISSING_SCOPES" and body["message"]
            assert body["context"] == {"missingScopes": [scope_of(path)]}
            assert body["correlationId"] == reply.headers["x-hubspot-correlation-id"]


async def test_a_key_past_its_limit_gets_429_rate_limits_with_retry_after():
    clock = Clock()
    limiter = RateLimiter(default=RateSpec(1000, 10_000), clock=clock)
    grants = {"ms_small": KeyGrant(7, 1, ALL_SCOPES, RateSpec(2, 10_000)), "ms_other": KeyGrant(7, 2, ALL_SCOPES)}
    async with client(grants, limiter=limiter) as api:
        # validation errors come after the key is checked and counted: no database is needed
        first = await api.post(SEND_PATH, headers=bearer("ms_small"), json={})
        assert first.status_code == 400
        second = await api.get("/mailstream/v1/stats", headers=bearer("ms_small"), params={"emailId": "x"})
        assert second.status_code == 400
        assert second.headers["x-hubspot-ratelimit-max"] == "2"
        assert second.headers["x-hubspot-ratelimit-remaining"] == "0"
        assert second.headers["x-hubspot-ratelimit-interval-milliseconds"] == "10000"
        for method, path in (("POST", SEND_PATH), ("GET", TOKENS_PATH)):
            refused = await api.request(method, path, headers=bearer("ms_small"), json={})
            body = refused.json()
            assert refused.status_code == 429 and body["category"] == "RATE_LIMITS" and body["status"] == "error"
            assert refused.headers["retry-after"] == "10"
            assert refused.headers["x-hubspot-ratelimit-remaining"] == "0"
            assert refused.headers["x-hubspot-ratelimit-max"] == "2"
        assert (await api.post(SEND_PATH, headers=bearer("ms_other"), json={})).status_code == 400
        clock.now += 10
        assert (await api.post(SEND_PATH, headers=bearer("ms_small"), json={})).status_code == 400


async def test_both_correlation_headers_carry_the_same_id():
    async with client({}) as api:
        for reply in (await api.get("/healthz"), await api.post(SEND_PATH, json={})):
            assert reply.headers["x-hubspot-correlation-id"] == reply.headers["x-correlation-id"]
