"""The HTTP app's contract without sockets: error shape, correlation ids, OpenAPI, caches."""

import time

import httpx

from mailstream.gateway.app import create_app
from mailstream.gateway.caches import Caches, domains_changed, email_changed
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.kafka_link import KafkaLink


class NoPool:
    """Any database use fails the test: these requests must be answered before any I/O."""

    def __getattr__(self, name):
        raise AssertionError(f"the database was used ({name})")


def client() -> httpx.AsyncClient:
    app = create_app(Dependencies(pool=NoPool(), kafka=KafkaLink(bootstrap="unused:1")))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_a_request_without_bearer_key_is_401_in_hubspot_shape_before_any_io():
    async with client() as api:
        for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
            reply = await api.post("/marketing/v3/transactional/single-email/send", json={}, headers=headers)
            body = reply.json()
            assert reply.status_code == 401 and body["category"] == "INVALID_AUTHENTICATION"
            assert body["status"] == "error" and body["message"]
            assert body["correlationId"] == reply.headers["x-hubspot-correlation-id"]


async def test_the_smtp_tokens_api_answers_401_without_a_bearer_key_before_any_io():
    tokens = "/marketing/v3/transactional/smtp-tokens"
    requests = [
        ("POST", tokens, {"createContact": True, "campaignName": "c"}),
        ("GET", tokens, None),
        ("GET", f"{tokens}/abc", None),
        ("DELETE", f"{tokens}/abc", None),
        ("POST", f"{tokens}/abc/password-reset", None),
        ("GET", f"{tokens}/abc/statistics", None),
    ]
    async with client() as api:
        for method, path, body in requests:
            reply = await api.request(method, path, json=body, headers={"Authorization": "Basic abc"})
            assert reply.status_code == 401 and reply.json()["category"] == "INVALID_AUTHENTICATION", (method, path)
            assert reply.headers["x-hubspot-auth-failure"] == "401 Unauthorized"


async def test_every_response_has_its_own_correlation_id():
    async with client() as api:
        first, second = await api.get("/healthz"), await api.get("/healthz")
    assert first.headers["x-hubspot-correlation-id"] != second.headers["x-hubspot-correlation-id"]
    assert first.headers["x-correlation-id"] == first.headers["x-hubspot-correlation-id"]


async def test_an_unknown_path_is_404_in_hubspot_shape():
    async with client() as api:
        reply = await api.get("/nope")
    assert reply.status_code == 404 and reply.json()["category"] == "OBJECT_NOT_FOUND"


async def test_openapi_documents_400_and_the_error_body_instead_of_422():
    async with client() as api:
        spec = (await api.get("/openapi.json")).json()
    assert "Error" in spec["components"]["schemas"] and "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert "422" not in operation["responses"], (method, path)
    send = spec["paths"]["/marketing/v3/transactional/single-email/send"]["post"]["responses"]
    assert send["400"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert send["200"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EmailSendStatusView"}


def test_the_key_cache_forgets_after_its_ttl_and_on_notice():
    caches = Caches(api_key_ttl_s=0.05)
    caches.set_listening(True)
    caches.remember_key(b"k", 7)
    assert caches.key_grant(b"k") == 7
    time.sleep(0.06)
    assert caches.key_grant(b"k") is None
    caches.remember_key(b"k", 7)
    caches.forget("keys")
    assert caches.key_grant(b"k") is None
    off = Caches(api_key_ttl_s=0)
    off.set_listening(True)
    off.remember_key(b"k", 7)
    assert off.key_grant(b"k") is None


def test_nothing_is_cached_while_no_invalidation_listener_runs():
    caches = Caches(api_key_ttl_s=60)
    caches.remember_key(b"k", 7)
    assert caches.key_grant(b"k") is None
    caches.set_listening(True)
    caches.remember_key(b"k", 7)
    caches.set_listening(False)  # the listener lost its connection: what it would have heard is unknown
    assert caches.key_grant(b"k") is None


def test_an_email_notice_drops_that_email_only():
    from mailstream.gateway.adapters.accepting import EmailFacts

    caches = Caches(api_key_ttl_s=1)
    caches.set_listening(True)
    for email_id in (5, 6):
        caches.remember_email(EmailFacts(email_id, 1, "DRAFT", True, 1, "TRANSACTIONAL", "a@b.example"))
    caches.forget(email_changed(5))
    assert list(caches.emails) == [(1, 6)]


def test_a_domains_notice_drops_that_accounts_verified_domains_only():
    caches = Caches(api_key_ttl_s=1)
    caches.set_listening(True)
    caches.remember_domains(1, frozenset({"a.example"}))
    caches.remember_domains(2, frozenset({"b.example"}))
    caches.forget(domains_changed(1))
    assert dict(caches.domains) == {2: frozenset({"b.example"})}


def fast_client() -> httpx.AsyncClient:
    from mailstream.gateway.fast_paths import FastPaths

    deps = Dependencies(pool=NoPool(), kafka=KafkaLink(bootstrap="unused:1"))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=FastPaths(create_app(deps), deps)), base_url="http://g")


async def test_the_fast_single_send_path_answers_401_in_the_same_shape_before_any_io():
    async with fast_client() as fast, client() as framework:
        for path in (
            "/marketing/v3/transactional/single-email/send",
            "/marketing/transactional/2026-03/single-email/send",
        ):
            for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
                ours, theirs = await fast.post(path, json={}, headers=headers), await framework.post(path, json={})
                assert ours.status_code == theirs.status_code == 401
                assert {k for k in ours.json() if k != "correlationId"} == {
                    k for k in theirs.json() if k != "correlationId"
                }
                assert ours.json()["category"] == "INVALID_AUTHENTICATION"
                assert ours.json()["correlationId"] == ours.headers["x-hubspot-correlation-id"]
                assert ours.headers["x-hubspot-auth-failure"] == "401 Unauthorized"


async def test_other_routes_pass_through_the_fast_paths_to_the_framework():
    async with fast_client() as fast:
        assert (await fast.get("/healthz")).json() == {"status": "ok"}
        assert (await fast.get("/marketing/v3/transactional/single-email/send")).status_code == 405
