"""The coalescing of recipient lookups, with a fake pool: errors reach every waiting caller (the
agent retries the transient ones), the connection is given back after an error and when idle."""

import asyncio

import pytest

from mailstream.renderer.adapters.recipients import Recipients


class FakeConnection:
    def __init__(self, fail: list[BaseException]) -> None:
        self.fail = fail
        self.batches: list[list[str]] = []

    async def fetch(self, query, account_ids, addresses):
        await asyncio.sleep(0)
        self.batches.append(list(addresses))
        if self.fail:
            raise self.fail.pop(0)
        return [
            {
                "i": i,
                "properties": {"who": address},
                "subscription_status": "SUBSCRIBED",
                "quarantined": False,
                "double_opt_in": "NOT_REQUIRED",
                "bounced": False,
                "spam_reported": False,
                "suppressed": [],
            }
            for i, address in enumerate(addresses, start=1)
        ]


class FakePool:
    def __init__(self, fail: list[BaseException] | None = None) -> None:
        self.conn = FakeConnection(fail or [])
        self.acquired = 0
        self.released = 0

    async def acquire(self):
        self.acquired += 1
        return self.conn

    async def release(self, conn):
        self.released += 1


async def test_lookups_asked_together_go_in_one_query_and_each_caller_gets_its_own_row():
    pool = FakePool()
    recipients = Recipients(pool, keep_idle=0.01)
    statuses = await asyncio.gather(*(recipients.status(1, f"A{i}@Example.com") for i in range(5)))
    assert [s.properties["who"] for s in statuses] == [f"a{i}@example.com" for i in range(5)]
    assert pool.conn.batches == [[f"a{i}@example.com" for i in range(5)]]
    await asyncio.sleep(0.05)
    assert pool.acquired == pool.released == 1


async def test_lookups_arriving_during_a_query_go_in_the_next_one_on_the_same_connection():
    pool = FakePool()
    recipients = Recipients(pool, keep_idle=0.05)
    first = asyncio.ensure_future(recipients.status(1, "a@example.com"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # the first query is in flight
    later = [asyncio.ensure_future(recipients.status(1, f"b{i}@example.com")) for i in range(3)]
    await asyncio.gather(first, *later)
    assert pool.conn.batches == [["a@example.com"], ["b0@example.com", "b1@example.com", "b2@example.com"]]
    assert pool.acquired == 1
    await asyncio.sleep(0.1)
    assert pool.released == 1


async def test_an_error_reaches_every_waiting_caller_and_the_next_lookup_uses_a_fresh_connection():
    pool = FakePool(fail=[OSError("connection reset")])
    recipients = Recipients(pool, keep_idle=0.01)
    results = await asyncio.gather(
        *(recipients.status(1, f"x{i}@example.com") for i in range(3)), return_exceptions=True
    )
    assert all(isinstance(r, OSError) for r in results)
    assert pool.released == 1  # the connection that failed went back to the pool (which drops broken ones)
    status = await recipients.status(1, "x0@example.com")
    assert status.properties == {"who": "x0@example.com"}
    assert pool.acquired == 2


async def test_a_cancelled_caller_does_not_cancel_the_lookup_of_another():
    pool = FakePool()
    recipients = Recipients(pool, keep_idle=0.01)
    gone = asyncio.ensure_future(recipients.status(1, "same@example.com"))
    stays = asyncio.ensure_future(recipients.status(1, "same@example.com"))
    await asyncio.sleep(0)
    gone.cancel()
    assert (await stays).properties == {"who": "same@example.com"}
    with pytest.raises(asyncio.CancelledError):
        await gone
