"""Runtime traffic shaping for the IPs this process owns: rate limiters, connection gates,
warm-up counters and automation (reactions to replies), per source IP and per (IP, site).

No shared limiter: email.rendered and its retry tiers are keyed by sending IP, so exactly one
sender process of the group consumes an IP's traffic (see docs/sender-notes.md). All state
here is in memory and lives as long as the process; a restart starts warm-up hour counters
and automation afresh (the conservative direction for rates is the policy's base rate).
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

    With max_burst 1 (the default) permits are evenly spaced, so no one-second window holds more
    than limit/period + 1 of them."""

    def __init__(self, spec: ThrottleSpec) -> None:
        self.spec = spec
        self._tat = 0.0  # theoretical arrival time of the next permit

    def delay(self, now: float) -> float:
        allow_at = max(self._tat, now) - (self.spec.max_burst - 1) * self.spec.interval
        return max(0.0, allow_at - now)

    def reserve(self, now: float) -> float:
        """Take the next permit; returns how long the caller must wait before using it."""
        wait = self.delay(now)
        self._tat = max(self._tat, now) + self.spec.interval
        return wait


class Gate:
    """A counting gate whose limit can change while it is held (automation lowers it)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._cond = asyncio.Condition()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: self.held < self.limit)
            self.held += 1
        try:
            yield
        finally:
            async with self._cond:
                self.held -= 1
                self._cond.notify_all()

    async def set_limit(self, limit: int) -> None:
        async with self._cond:
            self.limit = limit
            self._cond.notify_all()


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
                rate=Gcra(s.max_message_rate) if s.max_message_rate else None,
                connect_rate=Gcra(s.max_connection_rate) if s.max_connection_rate else None,
                gate=Gate(s.connection_limit),
            )
            self._sites[key] = state
        return state

    def _ip_rate(self, source: Source) -> Gcra | None:
        if source.max_message_rate is None:
            return None
        rate = self._ip_rates.get(source.address)
        if rate is None:
            rate = self._ip_rates[source.address] = Gcra(source.max_message_rate)
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
            await state.gate.set_limit(state.shaping.connection_limit)
            self._on_change(ip, rule.name, state.state(now))

    async def admit(self, source: Source, rule: DestinationRule, *, max_wait: float) -> float | None:
        """Wait for a message permit of the IP and of the (IP, site). None when admitted;
        otherwise the seconds to retry after (suspended, or the wait would exceed max_wait)."""
        now = self._clock()
        state = self.site(source.address, rule)
        await self._recover(source.address, rule, state, now)
        if now < state.suspended_until:
            return state.suspended_until - now
        limiters = [g for g in (self._ip_rate(source), state.override_rate or state.rate) if g is not None]
        wait = max((g.delay(now) for g in limiters), default=0.0)
        if wait > max_wait:
            return wait
        wait = max((g.reserve(now) for g in limiters), default=0.0)
        if wait > 0:
            await asyncio.sleep(wait)
        return None

    async def before_connect(self, source: Source, rule: DestinationRule) -> None:
        state = self.site(source.address, rule)
        if state.connect_rate is not None:
            wait = state.connect_rate.reserve(self._clock())
            if wait > 0:
                await asyncio.sleep(wait)

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
            if auto.action is Action.SUSPEND:
                state.suspended_until = max(state.suspended_until, now + auto.duration)
            else:
                state.override_until = now + auto.duration
                if auto.max_message_rate is not None:
                    state.override_rate = Gcra(auto.max_message_rate)
                if auto.connection_limit is not None:
                    await state.gate.set_limit(auto.connection_limit)
            self._on_change(source.address, rule.name, state.state(now))
            return auto
        return None


class WarmupCounter:
    """Messages sent per warm-up period (hour or day, wall clock) per IP, in this process."""

    def __init__(self, *, clock: Clock = time.time) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, int]] = {}  # ip -> (window number, count)

    def take(self, source: Source, cap: int) -> float | None:
        """Count one message if under the cap: None; else the seconds until the next window."""
        assert source.warmup is not None
        now = self._clock()
        period = source.warmup.period
        window = int(now // period)
        current, count = self._windows.get(source.address, (window, 0))
        if current != window:
            count = 0
        if count >= cap:
            return (window + 1) * period - now
        self._windows[source.address] = (window, count + 1)
        return None
