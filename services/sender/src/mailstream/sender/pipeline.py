"""One rendered message through named delivery steps, ending in exactly one result.

    STEPS = (check_duplicate, choose_source_ip, resolve_route, dkim_sign, check_throttle, deliver)

The rate permit itself is taken in `deliver`, inside the connection gates and right before
the SMTP transaction, so that waits for a database row or a free connection cannot bunch
permitted messages into a burst at the receiver.

Each step is `async (Attempt) -> StepResult | None`: None passes to the next step, a result
stops the pipeline. `Finish` then records and publishes the result (finish.py). The caller
commits the record's offset only after that returns.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dkim

from mailstream.schemas import EmailRendered, SendResult
from mailstream.sender.adapters.dkim_keys import sign
from mailstream.sender.adapters.dns import BadDomain, DnsTemporaryError, MxHost
from mailstream.sender.adapters.smtp import Route
from mailstream.sender.metrics import SMTP_SECONDS, WARMUP_CAP, WARMUP_CAPPED
from mailstream.sender.outcomes import Bounced, Deferred, Delivered, Dropped, Replayed, Rerouted, StepResult
from mailstream.sender.policy import DestinationRule, Policy, Source
from mailstream.sender.shaping import Shaper
from mailstream.sender.warmup import WarmupPositions, Window, window_of


@dataclass(slots=True)
class Group:
    """Recipients of one domain (all recipients in relay mode) and where they go."""

    domain: str
    recipients: list[str]
    site: DestinationRule
    routes: list[Route] = field(default_factory=list)


@dataclass(slots=True)
class Attempt:
    msg: EmailRendered
    started: datetime
    mime: bytes
    source: Source | None = None
    groups: list[Group] = field(default_factory=list)
    done_recipients: list[str] = field(default_factory=list)  # delivered or bounced (multi-domain messages)
    recorded_event: bytes | None = None  # the DELIVERED event, recorded while the connection was held

    @property
    def pending_recipients(self) -> tuple[str, ...]:
        return tuple(r for r in self.msg.recipients if r not in self.done_recipients)

    @property
    def destination(self) -> str:
        return self.groups[0].site.name if self.groups else domain_of(self.msg.recipients[0])


Step = Callable[[Attempt], Awaitable[StepResult | None]]


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


class CheckDuplicate:
    """A redelivered record whose delivery already ended is not sent again."""

    def __init__(self, records) -> None:
        self.records = records

    async def __call__(self, a: Attempt) -> StepResult | None:
        previous = await self.records.finished_event(a.msg.message_id)
        return Replayed(previous) if previous is not None else None


class ChooseSourceIp:
    """The renderer assigned the IP; a warming IP over its cap for the period overflows to a warm
    IP of the message's pool (re-published under that IP's key), or defers to the next period.
    The cap is drawn from the stored positions that every sender process shares."""

    def __init__(
        self,
        policy: Policy,
        positions: WarmupPositions,
        *,
        now: Callable[[], datetime] | None = None,
        rng=None,
    ) -> None:
        self.policy = policy
        self.positions = positions
        self.now = now or (lambda: datetime.now(UTC))
        self.rng = rng or random.Random()

    async def __call__(self, a: Attempt) -> StepResult | None:
        if a.msg.sending_ip not in self.policy.by_address:
            return self._not_a_source(a)
        source = self.policy.source(a.msg.sending_ip)
        a.source = source
        now = self.now()
        window = await self._window(source, now)
        WARMUP_CAP.labels(source.address).set(window.cap if window else 0)
        if window is None:
            return None
        if await self.positions.take(source.address, window, today=now.date()):
            return None
        WARMUP_CAPPED.labels(source.address).inc()
        pool = self.policy.pools.get(a.msg.pool)
        warm = [
            (s, w)
            for s, w in (pool.members if pool else ())
            if s.address != source.address and await self._window(s, now) is None
        ]
        if warm:
            chosen = self.rng.choices([s for s, _ in warm], weights=[w for _, w in warm])[0]
            return Rerouted(chosen.address, f"{source.address} reached its warm-up cap of {window.cap}")
        return Deferred(
            None,
            f"warm-up cap of {window.cap} reached on {source.address}, no warm IP in pool",
            retry_after=window.seconds_left(now),
        )

    async def _window(self, source: Source, now: datetime) -> Window | None:
        """The source's warm-up period now (None: warm); the stored first use only when the
        policy gives no warmup_started."""
        if source.warmup is None:
            return None
        first = None if source.warmup_started else await self.positions.first_used_on(source.address)
        return window_of(source, first_used_on=first, now=now)

    def _not_a_source(self, a: Attempt) -> StepResult:
        """An IP this sender does not send from (taken out of the policy while mail for it waited
        in a retry tier, or a record from elsewhere): never bind it; move to the pool's IPs."""
        pool = self.policy.pools.get(a.msg.pool)
        if pool and pool.members:
            chosen = self.rng.choices([s for s, _ in pool.members], weights=[w for _, w in pool.members])[0]
            return Rerouted(chosen.address, f"{a.msg.sending_ip} is not a source in the sending policy")
        # Kept (retried, then expired as a soft bounce) rather than dropped: the operator may add it back.
        return Deferred(None, f"neither {a.msg.sending_ip} nor pool {a.msg.pool!r} is in the sending policy")


Resolve = Callable[[str], Awaitable[Sequence[MxHost]]]


class ResolveRoute:
    """Relay mode: every recipient through the smart host. Direct mode: recipients grouped by
    domain, each group to its MX hosts in preference order (null MX / NXDOMAIN -> bad domain)."""

    def __init__(self, policy: Policy, *, relay: tuple[str, int] | None, resolve: Resolve | None, mx_port: int = 25):
        self.policy = policy
        self.relay = relay
        self.resolve = resolve
        self.mx_port = mx_port

    async def __call__(self, a: Attempt) -> StepResult | None:
        assert a.source is not None
        recipients = list(a.msg.recipients)
        if self.relay is not None:
            domain = domain_of(recipients[0])
            site = self.policy.site(domain)
            route = Route(self.relay[0], self.relay[1], a.source.address, site.shaping.tls.value)
            a.groups = [Group(domain, recipients, site, [route])]
            return None
        assert self.resolve is not None
        by_domain: dict[str, list[str]] = {}
        for rcpt in recipients:
            by_domain.setdefault(domain_of(rcpt), []).append(rcpt)
        for domain, rcpts in by_domain.items():
            try:
                hosts = await self.resolve(domain)
            except BadDomain as exc:
                if domain == domain_of(recipients[0]):
                    bad = self.policy.bad_domain_bounce
                    return Bounced(None, str(exc), None, bad.label, bad.send_result)
                a.done_recipients += rcpts  # a secondary domain that cannot receive mail: the primary still goes
            except DnsTemporaryError as exc:
                if domain == domain_of(recipients[0]):
                    return Deferred(None, str(exc))
                continue
            site = self.policy.site(domain, tuple(h.name for h in hosts))
            routes = [
                Route(addr, self.mx_port, a.source.address, site.shaping.tls.value, h.name)
                for h in hosts
                for addr in h.addresses
            ]
            a.groups.append(Group(domain, rcpts, site, routes))
        return None


class CheckThrottle:
    """Per-IP and per-(IP, site) message rates: a suspended site or a wait over `max_wait`
    defers the message instead of holding the partition (the permit is taken in Deliver)."""

    def __init__(self, shaper: Shaper, *, max_wait: float) -> None:
        self.shaper = shaper
        self.max_wait = max_wait

    async def __call__(self, a: Attempt) -> StepResult | None:
        assert a.source is not None
        admitted = []
        for group in a.groups:
            wait = await self.shaper.check(a.source, group.site, max_wait=self.max_wait)
            if wait is None:
                admitted.append(group)
            elif group is a.groups[0]:
                return Deferred(None, f"throttled: {group.site.name} on {a.source.address}", retry_after=wait)
        a.groups = admitted
        return None


Keys = Callable[[int, str], Awaitable[tuple[bytes, bytes] | None]]


class DkimSign:
    """Signs with the sending domain's key when the account has verified that domain.

    A key that cannot sign (not a private key, a bad selector) fails every attempt the same
    way, so the message ends DROPPED with UNCONFIGURED_SENDING_DOMAIN and the reason instead
    of being retried: it is not sent unsigned from a domain that publishes a key."""

    def __init__(self, keys: Keys, *, canonicalization: str = "relaxed/simple") -> None:
        self.keys = keys
        self.canonicalization = canonicalization

    async def __call__(self, a: Attempt) -> StepResult | None:
        key = await self.keys(a.msg.account_id, a.msg.sending_domain)
        if key is not None:
            selector, private_key = key
            try:
                a.mime = sign(
                    a.mime,
                    domain=a.msg.sending_domain,
                    selector=selector,
                    private_key=private_key,
                    canonicalization=self.canonicalization,
                )
            except (dkim.DKIMException, ValueError) as exc:
                return Dropped(
                    f"the DKIM key of {a.msg.sending_domain} (selector {selector.decode(errors='replace')})"
                    f" cannot sign: {exc}",
                    send_result=SendResult.UNCONFIGURED_SENDING_DOMAIN.value,
                )
        return None


class Deliver:
    """SMTP per group through its routes (next MX on a connection failure), inside the IP's
    and the site's connection gates; replies feed the automation; 5xx are classified."""

    def __init__(
        self,
        transport,
        shaper: Shaper,
        policy: Policy,
        *,
        max_wait: float = 30.0,
        on_delivered: Callable[[Attempt, Delivered], Awaitable[None]] | None = None,
    ) -> None:
        self.transport = transport
        self.shaper = shaper
        self.policy = policy
        self.max_wait = max_wait
        # Records the delivery before the connection gate is released: a message the receiver
        # accepted but whose record is not yet committed then holds a connection slot, so their
        # number (the duplicate window after a crash) is at most the connection limits.
        self.on_delivered = on_delivered

    async def _group(self, a: Attempt, group: Group) -> Delivered | Deferred | Bounced:
        assert a.source is not None
        source, site = a.source, group.site
        state = self.shaper.site(source.address, site)
        ip_gate = self.shaper.ip_gate(source)
        outcome: Delivered | Deferred | Bounced = Deferred(None, "no route")
        for route in group.routes:
            started = time.monotonic()
            async with state.gate.hold():
                if ip_gate is not None:
                    async with ip_gate.hold():
                        outcome = await self._send_and_record(a, group, route)
                else:
                    outcome = await self._send_and_record(a, group, route)
            SMTP_SECONDS.labels(source.address).observe(time.monotonic() - started)
            if not (isinstance(outcome, Deferred) and outcome.code is None and outcome.retry_after is None):
                break  # a reply from a server (or our own throttle): do not try the next MX
        if isinstance(outcome, Delivered) or (isinstance(outcome, Deferred) and outcome.retry_after is not None):
            return outcome
        await self.shaper.react(source, site, f"{outcome.code or ''} {outcome.reply}")
        if isinstance(outcome, Bounced):
            bounce = self.policy.classify_bounce(outcome.code, outcome.reply)
            return Bounced(outcome.code, outcome.reply, outcome.remote_host, bounce.label, bounce.send_result)
        return outcome

    async def _send_and_record(self, a: Attempt, group: Group, route: Route):
        outcome = await self._send(a, group, route)
        if isinstance(outcome, Delivered) and self.on_delivered is not None and len(a.groups) == 1:
            await self.on_delivered(a, outcome)
        return outcome

    async def _send(self, a: Attempt, group: Group, route: Route):
        assert a.source is not None
        source, site = a.source, group.site
        return await self.transport.deliver(
            route,
            a.msg.mail_from,
            group.recipients,
            a.mime,
            max_deliveries=site.shaping.max_deliveries_per_connection,
            before_connect=lambda: self.shaper.before_connect(source, site),
            permit=lambda: self.shaper.admit(source, site, max_wait=self.max_wait),
        )

    async def __call__(self, a: Attempt) -> StepResult | None:
        first: Delivered | Deferred | Bounced | None = None
        for group in a.groups:
            outcome = await self._group(a, group)
            if not isinstance(outcome, Deferred):
                a.done_recipients += group.recipients
            first = first or outcome
        if first is None:
            return Deferred(None, "nothing admitted")
        pending = a.pending_recipients
        if pending and not isinstance(first, Deferred):
            # The primary recipients are done; the rest (other domains) is retried on its own.
            return Deferred(None, f"partially delivered; retrying {len(pending)} recipients")
        return first


class Pipeline:
    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = tuple(steps)

    async def run(self, msg: EmailRendered) -> tuple[Attempt, StepResult]:
        attempt = Attempt(msg=msg, started=datetime.now(UTC), mime=msg.mime)
        for step in self.steps:
            result = await step(attempt)
            if result is not None:
                return attempt, result
        raise AssertionError("the deliver step always returns a result")
