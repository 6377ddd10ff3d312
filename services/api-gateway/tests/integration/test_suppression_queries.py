"""The suppressions API's queries (adapters/contacts.py) against the real PostgreSQL and the
tracker's views: the list's filters (reason, since, part of the address, @domain) and cursor, the
scoping by account, and the email event that caused a suppression."""

import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from mailstream.gateway.adapters import contacts
from mailstream.gateway.suppression_list import ListFilter
from testkit import common_settings

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
async def pool(stack):
    pool = await asyncpg.create_pool(common_settings().database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def account(pool):
    """A random account id with rows in the tracker's suppressions (written here as the tracker
    would; the gateway only reads them), removed at the end."""
    account_id = random.randrange(10**12, 10**13)
    message = uuid.uuid4()
    rows = [
        ("ann@shop.example", "BOUNCED", T0, message, "550 5.1.1 no such user"),
        ("ann@shop.example", "MANUAL", T0 + timedelta(days=2), None, "fraud"),
        ("bob@shop.example", "UNSUBSCRIBED", T0 + timedelta(days=1), None, None),
        ("cy@notshop.example", "SPAM_REPORT", T0 + timedelta(days=3), None, None),
        ("dee@sub.shop.example", "MANUAL", T0 + timedelta(days=4), None, None),
    ]
    await pool.executemany(
        "INSERT INTO suppressions (account_id, address, reason, created_at, message_id, detail) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [(account_id, *r) for r in rows],
    )
    event_id = uuid.uuid4()
    await pool.execute(
        "INSERT INTO email_events (id, account_id, type, created, recipient, message_id) "
        "VALUES ($1, $2, 'BOUNCE', $3, 'ann@shop.example', $4)",
        event_id,
        account_id,
        T0,
        message,
    )
    yield account_id, message, event_id
    await pool.execute("DELETE FROM suppressions WHERE account_id = $1", account_id)
    await pool.execute("DELETE FROM email_events WHERE account_id = $1", account_id)


EVERYTHING = ListFilter()


async def page(pool, account_id, where=EVERYTHING, after=None, limit=100):
    rows = await contacts.suppression_page(pool, account_id, where, after=after, limit=limit)
    return [(r["address"], r["reason"]) for r in rows]


async def test_the_list_filters_by_reason_since_address_part_and_domain(pool, account):
    account_id, _, _ = account
    assert len(await page(pool, account_id)) == 5
    assert await page(pool, account_id, ListFilter(reason="MANUAL")) == [
        ("ann@shop.example", "MANUAL"),
        ("dee@sub.shop.example", "MANUAL"),
    ]
    since = ListFilter(since=T0 + timedelta(days=2))
    assert [a for a, _ in await page(pool, account_id, since)] == [
        "ann@shop.example",
        "cy@notshop.example",
        "dee@sub.shop.example",
    ]
    # @shop.example is that domain only, not notshop.example nor sub.shop.example; a part matches anywhere
    assert {a for a, _ in await page(pool, account_id, ListFilter(domain="shop.example"))} == {
        "ann@shop.example",
        "bob@shop.example",
    }
    assert {a for a, _ in await page(pool, account_id, ListFilter(contains="shop.example"))} == {
        "ann@shop.example",
        "bob@shop.example",
        "cy@notshop.example",
        "dee@sub.shop.example",
    }
    assert await page(pool, account_id + 1) == []  # another account sees none of them


async def test_the_cursor_continues_after_an_address_and_reason(pool, account):
    account_id, _, _ = account
    first = await page(pool, account_id, limit=1)
    assert first == [("ann@shop.example", "BOUNCED")]
    assert await page(pool, account_id, after=first[-1], limit=2) == [
        ("ann@shop.example", "MANUAL"),
        ("bob@shop.example", "UNSUBSCRIBED"),
    ]


async def test_a_suppression_names_the_email_event_and_message_that_caused_it(pool, account):
    account_id, message, event_id = account
    found = {r["reason"]: r for r in await contacts.suppression_details(pool, account_id, "Ann@Shop.example")}
    assert (found["BOUNCED"]["event_id"], found["BOUNCED"]["event_type"], found["BOUNCED"]["message_id"]) == (
        event_id,
        "BOUNCE",
        message,
    )
    assert found["MANUAL"]["event_id"] is None and found["MANUAL"]["detail"] == "fraud"
    assert await contacts.suppression_details(pool, account_id + 1, "ann@shop.example") == []
