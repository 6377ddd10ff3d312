"""The sending policy as frozen types: sources and weighted pools, destination shaping with
automation, warm-up schedules, the bounce table (mailstream.schemas.bounces). Loaded from TOML
in `load.py`; no I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from mailstream.schemas.bounces import BounceClass, BounceTable
from mailstream.sender.policy.throttle import ThrottleSpec


class Tls(StrEnum):
    OPPORTUNISTIC = "opportunistic"  # STARTTLS when offered, plain otherwise
    REQUIRED = "required"  # no STARTTLS offered -> deferred, never sent in clear
    DISABLED = "disabled"


class Action(StrEnum):
    THROTTLE = "throttle"  # replace the destination's rate / connection limit for `duration`
    SUSPEND = "suspend"  # send nothing to the destination from that IP for `duration`


@dataclass(frozen=True, slots=True)
class WarmupSchedule:
    """Caps per `period` seconds by the IP's age in periods' days: caps[day]; past the end, no cap."""

    name: str
    period: float
    caps: tuple[int, ...]

    def cap(self, age_days: int) -> int | None:
        if age_days < 0:
            return self.caps[0]
        return self.caps[age_days] if age_days < len(self.caps) else None


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    address: str
    max_message_rate: ThrottleSpec | None = None
    connection_limit: int | None = None
    warmup: WarmupSchedule | None = None
    warmup_started: date | None = None

    def warmup_start(self, first_used_on: date | None, today: date) -> date:
        """Day 0 of the curve: the policy's warmup_started wins; else the IP's recorded first use;
        an IP that never sent starts today."""
        return self.warmup_started or first_used_on or today

    def warmup_cap(self, today: date, first_used_on: date | None = None) -> int | None:
        """Messages allowed per warm-up period today, or None once warm (or never warming)."""
        if self.warmup is None:
            return None
        return self.warmup.cap((today - self.warmup_start(first_used_on, today)).days)


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    members: tuple[tuple[Source, int], ...]  # (source, weight)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(s.address for s, _ in self.members)


@dataclass(frozen=True, slots=True)
class Automation:
    """A reaction to replies: when `regex` matches (`trigger` times per window), apply `action`."""

    regex: re.Pattern[str]
    action: Action
    duration: float
    max_message_rate: ThrottleSpec | None = None
    connection_limit: int | None = None
    trigger: ThrottleSpec | None = None  # e.g. 2/hr: react on the 2nd match within an hour


@dataclass(frozen=True, slots=True)
class Shaping:
    """Limits for one destination (a domain, a provider by MX suffix, or the default)."""

    connection_limit: int = 10
    max_connection_rate: ThrottleSpec | None = None
    max_message_rate: ThrottleSpec | None = None
    max_deliveries_per_connection: int = 100
    tls: Tls = Tls.OPPORTUNISTIC
    automation: tuple[Automation, ...] = ()


@dataclass(frozen=True, slots=True)
class DestinationRule:
    """A named site: shaping applies per (source IP, site)."""

    name: str
    shaping: Shaping
    domains: tuple[str, ...] = ()
    mx_suffixes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Policy:
    sources: dict[str, Source]
    pools: dict[str, Pool]
    default: Shaping
    rules: tuple[DestinationRule, ...]
    bounces: BounceTable  # the one table the tracker classifies late bounces (DSNs) with too
    by_address: dict[str, Source] = field(default_factory=dict)

    def site(self, domain: str, mx_hosts: tuple[str, ...] = ()) -> DestinationRule:
        """The rule for a recipient domain: exact domain first, then MX suffix, then the default
        (one site per domain)."""
        domain = domain.lower().rstrip(".")
        for rule in self.rules:
            if domain in rule.domains:
                return rule
        hosts = [h.lower().rstrip(".") for h in mx_hosts]
        for rule in self.rules:
            if any(h.endswith(s) for h in hosts for s in rule.mx_suffixes):
                return rule
        return DestinationRule(domain, self.default)

    @property
    def expired_bounce(self) -> BounceClass:
        return self.bounces.expired

    @property
    def bad_domain_bounce(self) -> BounceClass:
        return self.bounces.bad_domain

    def classify_bounce(self, code: int | None, reply: str) -> BounceClass:
        return self.bounces.classify(code, reply)

    def source(self, address: str) -> Source:
        return self.by_address.get(address) or Source(name=address, address=address)
