"""The stored warm-up positions (adapters/warmup_positions.py) against the real PostgreSQL: two
adapters on two connection pools stand for two sender processes sharing one cap."""

import asyncio
import random
from datetime import UTC, date, datetime, timedelta

import pytest

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.sender.adapters.warmup_positions import PgWarmupPositions
from mailstream.sender.warmup import Window
from testkit import common_settings

pytestmark = pytest.mark.integration
TODAY = datetime.now(UTC).date()
HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def window(cap: int, start: datetime = HOUR) -> Window:
    return Window(start, start + timedelta(hours=1), cap)


@pytest.fixture
async def pools():
    """Two connection pools, as two sender processes have; the sender's migrations applied."""
    made = [await create_pool(common_settings().database_url, max_size=4) for _ in range(2)]
    async with made[0].acquire() as conn:
        await apply_migrations(conn, "sender", migrations_of("mailstream.sender"))
    yield made
    for pool in made:
        await pool.close()


def address() -> str:
    """An address no other test or run uses: positions are per address and outlive a test."""
    return f"198.18.{random.randrange(256)}.{random.randrange(256)}-{random.randrange(10**9)}"


async def test_two_processes_never_grant_more_than_the_cap_together(pools):
    ip, cap = address(), 37
    one, two = (PgWarmupPositions(p) for p in pools)
    takes = [counter.take(ip, window(cap), today=TODAY) for _ in range(60) for counter in (one, two)]
    granted = await asyncio.gather(*takes)
    assert sum(granted) == cap
    assert await pools[0].fetchval("SELECT window_sent FROM warmup_positions WHERE address = $1", ip) == cap
    assert not await two.take(ip, window(cap), today=TODAY)


async def test_concurrent_reservations_from_two_pools_serialize_on_the_row(pools):
    ip, cap = address(), 100
    one, two = (PgWarmupPositions(p) for p in pools)
    rounds = [c.reserve(ip, window(cap), 7, today=TODAY) for _ in range(20) for c in (one, two)]  # 280 asked
    assert sum(await asyncio.gather(*rounds)) == cap


async def test_one_round_trip_per_ip_for_a_batch_of_takes(pools):
    counter = PgWarmupPositions(pools[0])
    a, b = address(), address()
    granted = await asyncio.gather(*(counter.take(ip, window(3), today=TODAY) for ip in (a, b) for _ in range(5)))
    assert granted == [True] * 3 + [False] * 2 + [True] * 3 + [False] * 2
    assert counter.batches == 1  # one flush: one statement per IP


async def test_a_new_period_starts_from_zero_and_first_use_is_kept(pools):
    ip = address()
    counter = PgWarmupPositions(pools[0])
    yesterday = TODAY - timedelta(days=1)
    assert await counter.reserve(ip, window(2, HOUR - timedelta(hours=1)), 5, today=yesterday) == 2
    assert await counter.reserve(ip, window(2), 5, today=TODAY) == 2  # the next hour: its own cap
    restarted = PgWarmupPositions(pools[1])
    assert await restarted.first_used_on(ip) == yesterday
    assert await restarted.reserve(ip, window(2), 1, today=TODAY) == 0


async def test_an_ip_that_never_sent_has_no_first_use(pools):
    assert await PgWarmupPositions(pools[0]).first_used_on(address()) is None


async def test_the_first_use_recorded_is_the_first_days(pools):
    ip = address()
    counter = PgWarmupPositions(pools[0])
    await counter.take(ip, window(5), today=date(2026, 1, 5))
    await counter.take(ip, window(5), today=date(2026, 1, 9))
    assert await PgWarmupPositions(pools[1]).first_used_on(ip) == date(2026, 1, 5)
