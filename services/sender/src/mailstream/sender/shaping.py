"""Runtime traffic shaping for the IPs this process owns: rate limiters, connection gates and
automation (reactions to replies), per source IP and per (IP, site). (Warm-up caps are shared
by all processes and stored: warmup.py, adapters/warmup_positions.py.)

No shared limiter: email.rendered and its retry tiers are keyed by sending IP, so exactly one
sender process of the group consumes an IP's traffic (see docs/sender-notes.md). All state
here is in memory and lives as long as the process; a restart starts automation afresh (the
conservative direction for rates is the policy's base rate).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from mailstream.sender.policy import Action, Automation, DestinationRule, Shaping, Source, ThrottleSpec

Clock = Callable[[], float]


class Gcra:
    """Generic cell rate algorithm: permits at `spec.interval` spacing, `max_burst` at once.

    Permits are granted at the moment they are used (`acquire`), in FIFO order, never reserved
    ahead: if the process stalls, the waiters do not fire together when it resumes. With
    max_burst 1 (the default), no one-second window holds more than limit/period + 1 grants.
    Kept by hand: aiolimiter and pyrate-limiter grant on acquire but let a stalled process's
    waiters through together (they fill a bucket meanwhile), which a receiver counts as a burst."""

    def __init__(self, spec: ThrottleSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self._tat = 0.0  # theoretical arrival time of the next permit
        self._clock = clock
        self._lock = asyncio.Lock()
        self.waiting = 0

    def delay(self, now: float) -> float:
        allow_at = max(self._tat, now) - (self.spec.max_burst - 1) * self.spec.interval
        return max(0.0, allow_at - now)

    def projected(self, now: float) -> float:
        """The wait of a newcomer: the head's delay plus one interval per queued waiter."""
        return self.delay(now) + self.waiting * self.spec.interval

    def take(self, now: float) -> None:
        # A waiter woken a little late (timer resolution) keeps the schedule, up to a quarter
        # interval; a longer stall restarts the spacing from now, so it never turns into a burst.
        base = self._tat if self._tat >= now - self.spec.interval / 4 else now
        self._tat = base + self.spec.interval

    def reserve(self, now: float) -> float:
        """Take the next permit ahead of time; returns how long to wait before using it."""
        wait = self.delay(now)
        self.take(now)
        return wait

    async def acquire(self) -> None:
        self.waiting += 1
        queued = True
        try:
            async with self._lock:
                self.waiting -= 1
                queued = False
                while (wait := self.delay(self._clock())) > 0:  # noqa: ASYNC110 - a timed wait, not an event
                    await asyncio.sleep(wait)
                self.take(self._clock())
        finally:
            if queued:  # cancelled while queued
                self.waiting -= 1


class Gate:
    """A FIFO counting gate whose limit can change while it is held (automation lowers it).
    A release wakes one waiter, not all of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        if self.held >= self.limit or self._waiters:
            future = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                await future  # the releaser counted us in
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._release()
                else:
                    self._waiters.remove(future)
                raise
        else:
            self.held += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self.held -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.held < self.limit:
            future = self._waiters.popleft()
            if not future.done():
                self.held += 1
                future.set_result(None)

    async def set_limit(self, limit: int) -> None:
        self.limit = limit
        self._wake()


@dataclass
class SiteState:
    """Shaping of one (source IP, site): base limits, and an automation override with an end."""

    shaping: Shaping
    rate: Gcra | None
    connect_rate: Gcra | None
    gate: Gate
    override_rate: Gcra | None = None
    override_until: float = 0.0
    suspended_until: float = 0.0
    generation: int = 0  # bumped by every automation change: waiting permits are re-checked
    matches: dict[int, deque[float]] = field(default_factory=dict)

    def state(self, now: float) -> int:
        """0 normal, 1 throttled by automation, 2 suspended (the backoff gauge)."""
        if now < self.suspended_until:
            return 2
        return 1 if now < self.override_until else 0


class Shaper:
    def __init__(self, *, clock: Clock = time.monotonic, on_change: Callable[[str, str, int], None] | None = None):
        self._clock = clock
        self._ip_rates: dict[str, Gcra] = {}
        self._ip_gates: dict[str, Gate] = {}
        self._sites: dict[tuple[str, str], SiteState] = {}
        self._on_change = on_change or (lambda ip, site, state: None)

    def site(self, ip: str, rule: DestinationRule) -> SiteState:
        key = (ip, rule.name)
        state = self._sites.get(key)
        if state is None:
            s = rule.shaping
            state = SiteState(
                shaping=s,
                rate=Gcra(s.max_message_rate, self._clock) if s.max_message_rate else None,
                connect_rate=Gcra(s.max_connection_rate, self._clock) if s.max_connection_rate else None,
                gate=Gate(s.connection_limit),
            )
            self._sites[key] = state
        return state

    def _ip_rate(self, source: Source) -> Gcra | None:
        if source.max_message_rate is None:
            return None
        rate = self._ip_rates.get(source.address)
        if rate is None:
            rate = self._ip_rates[source.address] = Gcra(source.max_message_rate, self._clock)
        return rate

    def ip_gate(self, source: Source) -> Gate | None:
        if source.connection_limit is None:
            return None
        gate = self._ip_gates.get(source.address)
        if gate is None:
            gate = self._ip_gates[source.address] = Gate(source.connection_limit)
        return gate

    async def _recover(self, ip: str, rule: DestinationRule, state: SiteState, now: float) -> None:
        if state.override_until and now >= state.override_until:
            state.override_until = 0.0
            state.override_rate = None
            state.generation += 1
            await state.gate.set_limit(state.shaping.connection_limit)
            self._on_change(ip, rule.name, state.state(now))

    def _limiters(self, source: Source, state: SiteState) -> list[Gcra]:
        return [g for g in (state.override_rate or state.rate, self._ip_rate(source)) if g is not None]

    async def check(self, source: Source, rule: DestinationRule, *, max_wait: float) -> float | None:
        """Without taking a permit: None if a message could go within max_wait, else the
        seconds to retry after (suspended, or throttled beyond max_wait)."""
        state = self.site(source.address, rule)
        now = self._clock()
        await self._recover(source.address, rule, state, now)
        if now < state.suspended_until:
            return state.suspended_until - now
        wait = max((g.projected(now) for g in self._limiters(source, state)), default=0.0)
        if wait > max_wait:
            # Throttled by automation: come back when it ends, not after the whole queue.
            return min(wait, state.override_until - now) if state.override_until > now else wait
        return None

    async def admit(self, source: Source, rule: DestinationRule, *, max_wait: float) -> float | None:
        """Wait for a permit of the (IP, site), then of the IP (last, closest to the send).
        None when admitted; otherwise the seconds to retry after.

        A permit granted before an automation reaction is re-checked, so a throttle applies at
        once to messages already waiting, not only to the next batch."""
        state = self.site(source.address, rule)
        while True:
            retry_after = await self.check(source, rule, max_wait=max_wait)
            if retry_after is not None:
                return retry_after
            generation = state.generation
            site_rate = state.override_rate or state.rate
            if site_rate is not None:
                await site_rate.acquire()
            if state.generation != generation:
                continue
            ip_rate = self._ip_rate(source)
            if ip_rate is not None:
                await ip_rate.acquire()
            return None

    async def before_connect(self, source: Source, rule: DestinationRule) -> None:
        state = self.site(source.address, rule)
        if state.connect_rate is not None:
            await state.connect_rate.acquire()

    async def react(self, source: Source, rule: DestinationRule, reply: str) -> Automation | None:
        """Apply the first automation rule whose regex matches the reply (and whose trigger
        threshold is reached). Returns the rule applied, if any."""
        now = self._clock()
        state = self.site(source.address, rule)
        for n, auto in enumerate(state.shaping.automation):
            if not auto.regex.search(reply):
                continue
            if auto.trigger is not None:
                seen = state.matches.setdefault(n, deque())
                seen.append(now)
                while seen and seen[0] < now - auto.trigger.period:
                    seen.popleft()
                if len(seen) < auto.trigger.limit:
                    return None
            state.generation += 1
            if auto.action is Action.SUSPEND:
                state.suspended_until = max(state.suspended_until, now + auto.duration)
            else:
                state.override_until = now + auto.duration
                if auto.max_message_rate is not None:
                    state.override_rate = Gcra(auto.max_message_rate, self._clock)
                if auto.connection_limit is not None:
                    await state.gate.set_limit(auto.connection_limit)
            self._on_change(source.address, rule.name, state.state(now))
            return auto
        return None
