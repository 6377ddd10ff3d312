"""API key scopes and request limits through the running gateway, seen by HubSpot's own SDK:
403 MISSING_SCOPES for a key without the operation's scope, 429 RATE_LIMITS past the key's limit,
both in HubSpot's error shape and headers. Keys are made with the admin CLI and the API."""

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
GATEWAY = os.environ.get("MAILSTREAM_TEST_GATEWAY_URL", "http://127.0.0.1:8080")
CLI = str(Path(sys.executable).with_name("mailstream"))
TOKENS = "/marketing/v3/transactional/smtp-tokens"


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def account_key(*options: str) -> str:
    """A new account's API key, made with `mailstream accounts create NAME [options]`."""
    result = subprocess.run(
        [CLI, "accounts", "create", f"scopes-{uuid.uuid4().hex[:6]}", *options],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def sdk(key: str, **options):
    try:
        from hubspot import Client
    except ImportError:
        pytest.fail("hubspot-api-client is not installed: pip install -e 'services/api-gateway[test]'")
    client = Client.create(access_token=key, host=GATEWAY, **options)
    client.config["base_url"] = GATEWAY
    return client


def hubspot_error(exc) -> dict:
    body = json.loads(exc.body)
    assert body["status"] == "error" and body["message"] and body["category"], body
    assert body["correlationId"] == exc.headers["x-hubspot-correlation-id"]
    return body


async def test_the_hubspot_sdk_gets_403_missing_scopes_for_a_key_without_the_scope(stack):
    from hubspot.marketing.transactional import ApiException, PublicSingleSendEmail, PublicSingleSendRequestEgg

    key = await asyncio.to_thread(account_key, "--scopes", "tokens")
    client = sdk(key)
    egg = PublicSingleSendRequestEgg(email_id=1, message=PublicSingleSendEmail(to="someone@example.com"))
    single_send = client.marketing.transactional.single_send_api
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(single_send.send_email, public_single_send_request_egg=egg)
    assert refused.value.status == 403
    body = hubspot_error(refused.value)
    assert body["category"] == "MISSING_SCOPES" and body["context"] == {"missingScopes": ["send"]}
    # what the key does grant still works
    page = await asyncio.to_thread(client.marketing.transactional.public_smtp_tokens_api.get_tokens_page)
    assert page.results == []


async def test_a_key_made_through_the_api_has_only_the_scopes_asked_for(api, new_account):
    admin = new_account("scopes")
    created = await api.post(
        "/mailstream/v1/api-keys", headers=auth(admin), json={"name": "stats only", "scopes": ["stats"]}
    )
    assert created.status_code == 201, created.text
    assert created.json()["scopes"] == ["stats"] and created.json().get("rateLimit") is None
    limited = created.json()["key"]
    assert (await api.get("/mailstream/v1/stats", headers=auth(limited))).status_code == 200
    refused = await api.get(TOKENS, headers=auth(limited))
    assert refused.status_code == 403 and refused.json()["context"] == {"missingScopes": ["tokens"]}
    listed = {k["name"]: k for k in (await api.get("/mailstream/v1/api-keys", headers=auth(admin))).json()}
    assert set(listed["initial"]["scopes"]) == {"send", "emails", "tokens", "contacts", "stats", "admin"}
    assert listed["stats only"]["scopes"] == ["stats"]
    bad = await api.post("/mailstream/v1/api-keys", headers=auth(admin), json={"scopes": ["everything"]})
    assert bad.status_code == 400 and bad.json()["errors"][0]["in"] == "scopes"


async def test_the_hubspot_sdk_gets_429_rate_limits_past_the_key_limit(stack):
    from hubspot.marketing.transactional import ApiException
    from urllib3.util.retry import Retry

    key = await asyncio.to_thread(account_key, "--rate-limit", "3/2s")
    # without retries: urllib3's default retries a 429 that has Retry-After, after waiting that long
    tokens = sdk(key, retry=Retry(total=0)).marketing.transactional.public_smtp_tokens_api
    refused = None
    for _ in range(7):  # 3 in a window, then refused (the window may end once in between)
        try:
            await asyncio.to_thread(tokens.get_tokens_page)
        except ApiException as exc:
            refused = exc
            break
    assert refused is not None and refused.status == 429
    body = hubspot_error(refused)
    assert body["category"] == "RATE_LIMITS"
    headers = refused.headers
    assert 1 <= int(headers["Retry-After"]) <= 2
    assert headers["X-HubSpot-RateLimit-Max"] == "3" and headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "2000"
    # the SDK as it comes waits Retry-After and gets through
    patient = sdk(key).marketing.transactional.public_smtp_tokens_api
    started = time.monotonic()
    for _ in range(4):
        assert (await asyncio.to_thread(patient.get_tokens_page)).results == []
    assert time.monotonic() - started < 10
