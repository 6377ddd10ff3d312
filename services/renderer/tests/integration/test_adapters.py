"""The PostgreSQL adapters against the real database: read-only views of other services' tables.

Rows the renderer does not own are created through the gateway's API where one exists
(accounts, emails, contacts) and inserted as test set-up otherwise (suppressions, the gateway's account_ip_pools),
always under a fresh account, so shared data is never touched.
"""

import hashlib

import asyncpg
import dev_dns
import pytest

from mailstream.core.settings import CommonSettings
from mailstream.renderer.adapters.emails import EmailVersions
from mailstream.renderer.adapters.recipients import AccountPoolAssignments, Recipients
from mailstream.schemas import SubscriptionType

pytestmark = pytest.mark.integration

DATABASE_URL = CommonSettings.from_env().database_url


@pytest.fixture
async def pool():
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=2)
    yield pool
    await pool.close()


async def one_status(pool, account_id: int, address: str):
    return (await Recipients(pool).statuses({(account_id, address.lower())}))[(account_id, address.lower())]


@pytest.fixture
async def account(new_account, pool):
    key = new_account("renderer-adapters")
    account_id = await pool.fetchval(
        "SELECT account_id FROM api_keys WHERE key_hash = $1", hashlib.sha256(key.encode()).digest()
    )
    return account_id, {"Authorization": f"Bearer {key}"}


async def test_recipient_status_reads_the_contact_row_and_the_suppressions(api, account, pool, unique_address):
    account_id, headers = account
    address = unique_address()
    reply = await api.put(
        f"/mailstream/v1/contacts/{address}",
        headers=headers,
        json={"properties": {"firstname": "Ada"}, "subscriptionStatus": "UNSUBSCRIBED", "quarantined": True},
    )
    assert reply.status_code == 200, reply.text
    await pool.execute(
        "INSERT INTO suppressions (account_id, address, reason) VALUES ($1, $2, 'BOUNCED')", account_id, address
    )
    status = await one_status(pool, account_id, address)
    assert status.properties == {"firstname": "Ada"}
    assert status.subscription_status == "UNSUBSCRIBED" and status.quarantined
    assert status.suppressed == frozenset({"BOUNCED"})


async def test_an_unknown_recipient_has_no_statuses_but_may_be_suppressed(account, pool, unique_address):
    account_id, _ = account
    assert (await one_status(pool, account_id, unique_address())).suppressed == frozenset()
    address = unique_address()
    await pool.execute(
        "INSERT INTO suppressions (account_id, address, reason) VALUES ($1, $2, 'SPAM_REPORT')", account_id, address
    )
    status = await one_status(pool, account_id, address)
    assert status.subscription_status == "NOT_SPECIFIED" and status.suppressed == frozenset({"SPAM_REPORT"})


async def test_a_dedicated_pool_is_read_once_a_domain_verified_and_cached(api, account, pool):
    account_id, headers = account
    pools = AccountPoolAssignments(pool, ttl=60, miss_ttl=60)
    assert (await api.put("/mailstream/v1/ips", headers=headers, json={"pool": "pair"})).status_code == 200
    assert await pools.dedicated(account_id) is None  # assigned, not ready: no verified domain yet
    domain = await dev_dns.verified_domain(api, headers)
    try:
        assert await pools.dedicated(account_id) is None  # the miss is cached
        assert await AccountPoolAssignments(pool).dedicated(account_id) == "pair"
    finally:
        await dev_dns.remove_domain(api, headers, domain)


async def test_email_versions_are_loaded_compiled_and_scoped_to_the_account(api, account, pool):
    account_id, headers = account
    created = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={
            "name": "adapter",
            "subject": "Hi {{ contact.firstname }}",
            "fromName": "Shop",
            "fromEmail": "orders@shop.example",
            "html": "<p>{{ custom.x }}</p>",
            "subscriptionType": "MARKETING",
            "tracking": False,
        },
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    versions = EmailVersions(pool)
    key = (account_id, email_id, 1)
    loaded = (await versions.load_many({key}))[key]
    assert loaded.subscription_type is SubscriptionType.MARKETING and loaded.tracking is False
    assert loaded.from_email == "orders@shop.example"
    assert loaded.compiled.text is not None or loaded.compiled.derived_text is not None
    assert (await versions.load_many({key}))[key] is loaded and versions.queries == 1  # cached per version
    other = (account_id + 1, email_id, 1)
    assert (await EmailVersions(pool).load_many({other}))[other] is None  # another account's email


async def test_an_email_versions_static_links_are_stored_with_it_and_loaded_as_an_index(api, account, pool):
    account_id, headers = account
    html = '<a href="https://a.example/1">1</a><a href="https://b.example/{{ custom.x }}">2</a><a href="https://c.example">3</a>'
    created = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={"name": "links", "subject": "s", "fromEmail": "orders@shop.example", "html": html},
    )
    assert created.status_code == 201, created.text
    key = (account_id, created.json()["emailId"], 1)
    loaded = (await EmailVersions(pool).load_many({key}))[key]
    assert loaded.links == {"https://a.example/1": 0, "https://c.example": 1}


async def test_a_batch_of_recipients_is_one_query_and_each_gets_its_own_status(api, account, pool, unique_address):
    account_id, headers = account
    addresses = [unique_address() for _ in range(12)]
    for n, address in enumerate(addresses[:4]):
        reply = await api.put(f"/mailstream/v1/contacts/{address}", headers=headers, json={"properties": {"n": str(n)}})
        assert reply.status_code == 200, reply.text
    await pool.execute(
        "INSERT INTO suppressions (account_id, address, reason) VALUES ($1, $2, 'UNSUBSCRIBED')",
        account_id,
        addresses[5],
    )
    recipients = Recipients(pool)
    found = await recipients.statuses({(account_id, a) for a in addresses})
    statuses = [found[(account_id, a)] for a in addresses]
    assert [s.properties for s in statuses[:4]] == [{"n": "0"}, {"n": "1"}, {"n": "2"}, {"n": "3"}]
    assert all(s.properties == {} for s in statuses[4:])
    assert statuses[5].suppressed == frozenset({"UNSUBSCRIBED"})
    assert all(s.suppressed == frozenset() for i, s in enumerate(statuses) if i != 5)
    assert recipients.queries == 1
    # the contact changes: the next lookup reads it again (nothing is cached)
    await pool.execute(
        "UPDATE contacts SET quarantined = true WHERE account_id = $1 AND email = $2", account_id, addresses[0]
    )
    assert (await one_status(pool, account_id, addresses[0])).quarantined
