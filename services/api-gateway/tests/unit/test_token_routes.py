"""The SMTP tokens routes through the app with a fake token store: statuses, bodies, the caller's
account from deps.Account and 503 when the database is down."""

import dataclasses
from datetime import UTC, datetime

import httpx
import pytest

from mailstream.gateway import passwords
from mailstream.gateway.adapters import stats, store, tokens_store
from mailstream.gateway.adapters.tokens_store import TokenRow
from mailstream.gateway.app import create_app
from mailstream.gateway.caches import Caches
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.keys import KeyGrant, hash_api_key
from mailstream.gateway.scopes import ALL_SCOPES

TOKENS = "/marketing/v3/transactional/smtp-tokens"
KEY, ACCOUNT = "ms_test-key", 7
AUTH = {"Authorization": f"Bearer {KEY}"}


class NoPool:
    def __getattr__(self, name):
        raise AssertionError(f"the database was used ({name})")


class FakeTokens:
    """The tokens_store functions the routes call, over a dict."""

    def __init__(self) -> None:
        self.rows: dict[str, TokenRow] = {}
        self.creators: list[tuple[int, bytes]] = []

    async def creator_of_key(self, pool, account_id, key_hash):
        self.creators.append((account_id, key_hash))
        return "ops@shop.example"

    async def create_token(
        self, pool, *, token_id, account_id, password_hash, campaign_name, create_contact, created_by
    ):
        row = TokenRow(
            token_id,
            account_id,
            password_hash,
            campaign_name,
            10000001 + len(self.rows),
            create_contact,
            created_by,
            datetime(2026, 3, 1, tzinfo=UTC),
        )
        self.rows[token_id] = row
        return row

    async def get_token(self, pool, account_id, token_id):
        row = self.rows.get(token_id)
        return row if row is not None and row.account_id == account_id else None

    async def list_tokens(self, pool, account_id, *, after, limit, campaign_name, email_campaign_id):
        rows = sorted(self.rows.values(), key=lambda r: r.email_campaign_id)
        return [r for r in rows if r.account_id == account_id and r.email_campaign_id > after][: limit + 1]

    async def delete_token(self, pool, account_id, token_id):
        return self.rows.pop(token_id, None) is not None

    async def reset_password(self, pool, account_id, token_id, password_hash):
        if token_id not in self.rows:
            return None
        self.rows[token_id] = dataclasses.replace(self.rows[token_id], password_hash=password_hash)
        return self.rows[token_id]


@pytest.fixture
def fake(monkeypatch) -> FakeTokens:
    fake = FakeTokens()
    for name in ("creator_of_key", "create_token", "get_token", "list_tokens", "delete_token", "reset_password"):
        monkeypatch.setattr(tokens_store, name, getattr(fake, name))

    async def no_stats(pool, account_id, dimension, dimension_id):
        return None

    monkeypatch.setattr(stats, "stats_row", no_stats)
    return fake


def api(*, known_key: bool = True) -> httpx.AsyncClient:
    caches = Caches(api_key_ttl_s=60)
    caches.set_listening(True)
    if known_key:
        # deps.Account answers from its cache: no query
        caches.remember_key(hash_api_key(KEY), KeyGrant(ACCOUNT, 1, ALL_SCOPES))
    app = create_app(Dependencies(pool=NoPool(), kafka=KafkaLink(bootstrap="unused:1"), caches=caches))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


async def test_a_token_is_created_with_its_password_once_and_its_creator(fake):
    async with api() as client:
        created = await client.post(TOKENS, headers=AUTH, json={"createContact": True, "campaignName": "Receipts"})
        assert created.status_code == 201
        view = created.json()
        assert set(view) == {
            "id",
            "password",
            "createdBy",
            "emailCampaignId",
            "createdAt",
            "createContact",
            "campaignName",
        }
        assert view["createdBy"] == "ops@shop.example" and fake.creators == [(ACCOUNT, hash_api_key(KEY))]
        assert passwords.verify_password(fake.rows[view["id"]].password_hash, view["password"])
        got = await client.get(f"{TOKENS}/{view['id']}", headers=AUTH)
        assert got.status_code == 200 and got.json() == {k: v for k, v in view.items() if k != "password"}


async def test_token_input_is_checked_in_the_error_shape(fake):
    async with api() as client:
        bad = await client.post(TOKENS, headers=AUTH, json={"campaignName": "x"})
        assert bad.status_code == 400 and [e["in"] for e in bad.json()["errors"]] == ["createContact"]
        cursor = await client.get(TOKENS, headers=AUTH, params={"after": "nope"})
        assert cursor.status_code == 400 and cursor.json()["category"] == "VALIDATION_ERROR"
        assert (await client.get(TOKENS, headers=AUTH, params={"limit": 0})).status_code == 400
        assert (await client.get(TOKENS, headers=AUTH, params={"emailCampaignId": "x"})).json() == {"results": []}


async def test_tokens_are_listed_in_pages_reset_and_deleted(fake):
    async with api() as client:
        ids = [
            (await client.post(TOKENS, headers=AUTH, json={"createContact": False, "campaignName": "c"})).json()["id"]
            for _ in range(2)
        ]
        first = (await client.get(TOKENS, headers=AUTH, params={"limit": 1, "campaignName": "c"})).json()
        assert [t["id"] for t in first["results"]] == ids[:1]
        assert first["paging"]["next"] == {
            "after": "10000001",
            "link": f"{TOKENS}?limit=1&campaignName=c&after=10000001",
        }
        old_hash = fake.rows[ids[0]].password_hash
        reset = await client.post(f"{TOKENS}/{ids[0]}/password-reset", headers=AUTH)
        assert reset.status_code == 200 and "password" in reset.json()
        assert fake.rows[ids[0]].password_hash != old_hash
        statistics = (await client.get(f"{TOKENS}/{ids[0]}/statistics", headers=AUTH)).json()
        assert statistics["tokenId"] == ids[0] and statistics["counters"]["sent"] == 0
        deleted = await client.delete(f"{TOKENS}/{ids[0]}", headers=AUTH)
        assert deleted.status_code == 204 and deleted.content == b""
        for method, path in (("GET", ids[0]), ("DELETE", ids[0]), ("POST", f"{ids[0]}/password-reset")):
            missing = await client.request(method, f"{TOKENS}/{path}", headers=AUTH)
            assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"


async def test_the_tokens_api_is_503_while_the_database_is_down(fake, monkeypatch):
    async def database_down(pool, key_hash):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(store, "grant_for_key_hash", database_down)
    async with api(known_key=False) as client:
        reply = await client.get(TOKENS, headers=AUTH)
    assert reply.status_code == 503 and reply.json()["category"] == "SERVICE_UNAVAILABLE"
    assert reply.headers["retry-after"] == "1"


async def test_the_dated_tokens_path_serves_the_same_api(fake):
    dated = "/marketing/transactional/2026-03/smtp-tokens"
    async with api() as client:
        created = await client.post(dated, headers=AUTH, json={"createContact": False, "campaignName": "Dated"})
        assert created.status_code == 201 and created.json()["password"]
        token_id = created.json()["id"]
        for path in (f"{dated}/{token_id}", f"{TOKENS}/{token_id}"):
            got = await client.get(path, headers=AUTH)
            assert got.status_code == 200 and got.json()["campaignName"] == "Dated"
        listed = await client.get(dated, headers=AUTH, params={"campaignName": "Dated"})
        assert [t["id"] for t in listed.json()["results"]] == [token_id]
        reset = await client.post(f"{dated}/{token_id}/password-reset", headers=AUTH)
        assert reset.status_code == 200 and reset.json()["password"] != created.json()["password"]
        assert (await client.delete(f"{dated}/{token_id}", headers=AUTH)).status_code == 204
        assert (await client.get(f"{TOKENS}/{token_id}", headers=AUTH)).status_code == 404
