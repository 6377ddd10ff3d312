"""Rate limiters, gates, automation and the retry schedule (no sockets)."""

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from mailstream.sender.policy import Action, Automation, DestinationRule, Shaping, Source, ThrottleSpec
from mailstream.sender.retry import RetrySchedule
from mailstream.sender.shaping import Gate, Gcra, Shaper


class TestGcra:
    async def test_grants_in_fifo_order_at_the_rate_when_used(self):
        g = Gcra(ThrottleSpec.parse("100/s"))
        loop = asyncio.get_running_loop()
        granted = []

        async def take(n):
            await g.acquire()
            granted.append((n, loop.time()))

        await asyncio.gather(*(take(n) for n in range(10)))
        assert [n for n, _ in granted] == list(range(10))
        gaps = [b - a for (_, a), (_, b) in itertools.pairwise(granted)]
        assert min(gaps) >= 0.0075 and granted[-1][1] - granted[0][1] >= 0.0895 and g.waiting == 0

    async def test_a_stall_does_not_release_a_burst(self):
        g = Gcra(ThrottleSpec.parse("100/s"))
        await g.acquire()
        time.sleep(0.1)  # noqa: ASYNC251 - the process stalls: the next permits are still spaced from now on
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        for _ in range(3):
            await g.acquire()
        assert loop.time() - t0 >= 0.019

    def test_spaces_permits_evenly(self):
        g = Gcra(ThrottleSpec.parse("50/s"))
        waits = [g.reserve(0.0) for _ in range(5)]
        assert waits == pytest.approx([0, 0.02, 0.04, 0.06, 0.08])

    def test_no_one_second_window_exceeds_the_limit_plus_one(self):
        g = Gcra(ThrottleSpec.parse("50/s"))
        times = [g.reserve(0.0) for _ in range(200)]
        assert max(sum(1 for t in times if s <= t < s + 1) for s in times) <= 51

    def test_burst(self):
        g = Gcra(ThrottleSpec.parse("1/s,max_burst=3"))
        assert [g.reserve(0.0) for _ in range(4)] == pytest.approx([0, 0, 0, 1])


class TestGate:
    async def test_bounds_concurrency_and_follows_a_lowered_limit(self):
        gate, running, peak = Gate(3), 0, 0

        async def work():
            nonlocal running, peak
            async with gate.hold():
                running += 1
                peak = max(peak, running)
                await asyncio.sleep(0.01)
                running -= 1

        await asyncio.gather(*(work() for _ in range(10)))
        assert peak == 3
        await gate.set_limit(1)
        peak = 0
        await asyncio.gather(*(work() for _ in range(5)))
        assert peak == 1


def rule(*automation, rate="100/s"):
    return DestinationRule("dest", Shaping(max_message_rate=ThrottleSpec.parse(rate), automation=automation))


SOURCE = Source("a", "127.0.0.2", max_message_rate=ThrottleSpec.parse("50/s"))


class TestAutomation:
    async def test_throttle_reduces_the_rate_then_recovers_by_itself(self):
        now = [0.0]
        changes = []
        shaper = Shaper(clock=lambda: now[0], on_change=lambda ip, site, s: changes.append(s))
        auto = Automation(
            regex=__import__("re").compile("421"),
            action=Action.THROTTLE,
            duration=30,
            max_message_rate=ThrottleSpec.parse("1/s"),
            connection_limit=1,
        )
        dest = rule(auto)
        assert await shaper.react(SOURCE, dest, "421 4.7.0 slow down") is auto
        state = shaper.site("127.0.0.2", dest)
        assert state.gate.limit == 1 and state.state(now[0]) == 1
        now[0] = 31.0
        assert await shaper.admit(SOURCE, dest, max_wait=1) is None
        assert state.override_rate is None and state.gate.limit == 10 and changes == [1, 0]

    async def test_suspend_and_trigger_threshold(self):
        now = [0.0]
        shaper = Shaper(clock=lambda: now[0])
        auto = Automation(
            regex=__import__("re").compile("unusual rate"),
            action=Action.SUSPEND,
            duration=3600,
            trigger=ThrottleSpec.parse("2/hr"),
        )
        dest = rule(auto)
        assert await shaper.react(SOURCE, dest, "421 detected an unusual rate") is None  # 1st of 2
        assert await shaper.react(SOURCE, dest, "250 fine") is None
        assert await shaper.react(SOURCE, dest, "421 detected an unusual rate") is auto
        assert await shaper.admit(SOURCE, dest, max_wait=1) == pytest.approx(3600)

    async def test_the_ip_rate_applies_across_destinations(self):
        shaper = Shaper()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for n in range(4):
            assert await shaper.admit(SOURCE, DestinationRule(f"d{n}", Shaping()), max_wait=1) is None
        # four permits of the 50/s IP limit, on four destinations: 3 intervals of 20 ms
        assert loop.time() - started == pytest.approx(0.06, abs=0.015)


class TestRetrySchedule:
    def test_production_defaults_double_from_20_minutes(self):
        s = RetrySchedule()
        assert [s.delay(n) / 60 for n in range(1, 6)] == [20, 40, 80, 160, 320]

    def test_tiers_hold_delay_bands(self):
        s = RetrySchedule(base=10)
        assert [s.tier(s.delay(n)) for n in range(1, 8)] == [0, 1, 1, 2, 2, 3, 3]

    def test_retry_after_is_a_floor_and_max_age_expires(self):
        s = RetrySchedule(base=10, max_age=100)
        now = datetime.now(UTC)
        not_before, _ = s.next_attempt(attempt=0, first_attempt_at=now, now=now, retry_after=30)
        assert not_before == now + timedelta(seconds=30)
        assert s.next_attempt(attempt=4, first_attempt_at=now - timedelta(seconds=50), now=now) is None


class TestAdmitAfterReaction:
    async def test_a_waiting_permit_is_rechecked_after_a_throttle(self):
        import re

        auto = Automation(
            regex=re.compile("slow"), action=Action.THROTTLE, duration=60, max_message_rate=ThrottleSpec.parse("1/min")
        )
        dest = rule(auto, rate="10/s")
        shaper = Shaper()
        source = Source("a", "127.0.0.2")
        assert await shaper.admit(source, dest, max_wait=5) is None  # takes the first permit

        async def react_soon():
            await asyncio.sleep(0.02)
            await shaper.react(source, dest, "421 slow down")

        reacting = asyncio.create_task(react_soon())
        second = await shaper.admit(source, dest, max_wait=5)  # waits 0.1 s, the throttle lands meanwhile
        await reacting
        assert second is None  # the throttled limiter's first permit
        third = await shaper.admit(source, dest, max_wait=5)
        assert third == pytest.approx(60, abs=1)  # comes back when the throttle ends
