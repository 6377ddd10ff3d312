"""Domain settings: add, show, list, verify, delete sending domains, re-verify them on a schedule,
and assign an account its dedicated pool. The API routes, the CLI and the re-verification loop
all call these; the policy is in domains.py and spf.py, the I/O behind the adapters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import asyncpg

from mailstream.gateway import domains, spf
from mailstream.gateway.adapters import domains_store
from mailstream.gateway.adapters.dns_lookup import DnsLookup
from mailstream.gateway.adapters.domains_store import DomainRow
from mailstream.gateway.adapters.invalidation import announce
from mailstream.gateway.adapters.policy_files import load_pools_policy
from mailstream.gateway.caches import CHANNEL, domains_changed
from mailstream.gateway.dkim_keys import new_dkim_key
from mailstream.gateway.domains import DomainState, RecordCheck, RecordKind, RecordStatus
from mailstream.gateway.errors import ApiError, conflict, invalid, not_found
from mailstream.schemas.pools import SHARED_POOL, PoolsFile

MAX_SPF_FETCHES = 60  # the SPF walk stops following includes past 20 lookups; this bounds the fetches


class Lookup(Protocol):
    async def lookup(self, rdtype: str, name: str) -> spf.Answer: ...


@dataclass(frozen=True, slots=True)
class DomainConfig:
    """The settings domain setup reads (GatewaySettings.domain_config())."""

    policy_dir: str = "deploy/policy"
    spf_include: str = "spf.mailstream.local"
    return_path_label: str = "bounces"
    bounce_host: str = "bounces.mailstream.local"
    dmarc_report_to: str = ""
    dns_nameservers: str = ""
    dns_timeout_s: float = 5.0
    recheck_interval_s: float = 6 * 3600
    failing_grace_s: float = 72 * 3600


@dataclass(frozen=True, slots=True)
class DomainDetails:
    row: DomainRow
    records: tuple[domains.ExpectedRecord, ...]
    checks: dict[RecordKind, RecordCheck]


@dataclass(frozen=True, slots=True)
class IpStatus:
    pool: str | None
    ips: tuple[str, ...]
    ready: bool
    reason: str
    available_pools: tuple[str, ...]


def utc_now() -> datetime:
    return datetime.now(UTC)


UNCHECKED_REASON = "not checked yet: publish the record, then verify"


def stored_checks(row: DomainRow) -> dict[RecordKind, RecordCheck]:
    checks = {}
    for kind in RecordKind:
        saved = row.record_checks.get(kind.value)
        if saved:
            checks[kind] = RecordCheck(kind, RecordStatus(saved["status"]), saved["reason"])
        else:
            checks[kind] = RecordCheck(kind, RecordStatus.UNCHECKED, UNCHECKED_REASON)
    return checks


async def judge_records(
    records: tuple[domains.ExpectedRecord, ...], policy: domains.RecordPolicy, lookup: Lookup
) -> dict[RecordKind, RecordCheck]:
    """Each record's check from real lookups (concurrently; SPF one lookup at a time as it needs them)."""

    async def spf_check(record: domains.ExpectedRecord) -> RecordCheck:
        view = spf.DnsView()
        for _ in range(MAX_SPF_FETCHES):
            outcome = domains.judge_spf(record, policy, view)
            if isinstance(outcome, RecordCheck):
                return outcome
            view.add(outcome, await lookup.lookup(outcome.rdtype, outcome.name))
        return RecordCheck(RecordKind.SPF, RecordStatus.TOO_MANY_LOOKUPS, "SPF needs too many DNS lookups to check")

    async def one(record: domains.ExpectedRecord) -> RecordCheck:
        if record.kind is RecordKind.SPF:
            return await spf_check(record)
        if record.kind is RecordKind.RETURN_PATH:
            return domains.judge_return_path(record, await lookup.lookup("CNAME", record.host))
        judge = domains.judge_dkim if record.kind is RecordKind.DKIM else domains.judge_dmarc
        return judge(record, await lookup.lookup("TXT", record.host))

    found = await asyncio.gather(*(one(r) for r in records))
    return {check.kind: check for check in found}


@dataclass
class DomainService:
    pool: asyncpg.Pool
    config: DomainConfig = field(default_factory=DomainConfig)
    lookup: Lookup | None = None  # None: dnspython with config.dns_nameservers, made on first use
    clock: Callable[[], datetime] = utc_now

    def _lookup(self) -> Lookup:
        if self.lookup is None:  # not at construction: reading resolv.conf is I/O
            self.lookup = DnsLookup(nameservers=self.config.dns_nameservers, timeout=self.config.dns_timeout_s)
        return self.lookup

    def policy(self) -> PoolsFile:
        return load_pools_policy(self.config.policy_dir)

    def _ips_of(self, pool_name: str | None) -> tuple[str, ...]:
        if pool_name is None:
            return ()
        policy = self.policy()
        entry = policy.pools.get(pool_name)
        if entry is None:
            return ()  # the pool left pools.toml: the account's mail leaves from the shared pool
        return tuple(policy.sources[source].address for source, _ in entry.members)

    async def record_policy(self, account_id: int) -> domains.RecordPolicy:
        return domains.RecordPolicy(
            dedicated_ips=self._ips_of(await domains_store.assigned_pool(self.pool, account_id)),
            spf_include=self.config.spf_include,
            return_path_label=self.config.return_path_label,
            bounce_host=self.config.bounce_host,
            dmarc_report_to=self.config.dmarc_report_to,
        )

    def _details(self, row: DomainRow, policy: domains.RecordPolicy) -> DomainDetails:
        records = domains.expected_records(row.domain, row.dkim_selector, row.dkim_public_key, policy)
        return DomainDetails(row, records, stored_checks(row))

    async def _owned(self, account_id: int, name: str) -> DomainRow:
        try:
            domain = domains.normalize_domain(name)
        except domains.DomainNameError:
            domain = name.lower()  # not a name we could hold: simply not found
        row = await domains_store.get_domain(self.pool, account_id, domain)
        if row is None:
            raise not_found(f"Sending domain {name}")
        return row

    # --- sending domains --------------------------------------------------------------------

    async def add(self, account_id: int, name: str) -> DomainDetails:
        try:
            domain = domains.normalize_domain(name)
        except domains.DomainNameError as exc:
            raise invalid("domain", str(exc)) from None
        if await domains_store.get_domain(self.pool, account_id, domain) is not None:
            raise conflict(f"The sending domain {domain} is already in this account")
        key = await asyncio.to_thread(new_dkim_key)
        row = await domains_store.insert_domain(
            self.pool, account_id, domain, selector=key.selector, private_key=key.private_key, public_key=key.public_key
        )
        if row is None:  # added by a concurrent request
            raise conflict(f"The sending domain {domain} is already in this account")
        return self._details(row, await self.record_policy(account_id))

    async def show(self, account_id: int, name: str) -> DomainDetails:
        row = await self._owned(account_id, name)
        return self._details(row, await self.record_policy(account_id))

    async def list_domains(self, account_id: int, *, after: str = "", limit: int = 100) -> list[DomainDetails]:
        rows = await domains_store.list_domains(self.pool, account_id, after=after, limit=limit)
        policy = await self.record_policy(account_id)
        return [self._details(row, policy) for row in rows]

    async def delete(self, account_id: int, name: str) -> None:
        row = await self._owned(account_id, name)
        if not await domains_store.delete_domain(self.pool, account_id, row.domain):
            raise not_found(f"Sending domain {name}")
        await announce(self.pool, CHANNEL, domains_changed(account_id))

    async def verify(self, account_id: int, name: str) -> DomainDetails:
        return await self._check(await self._owned(account_id, name))

    async def _check(self, row: DomainRow) -> DomainDetails:
        policy = await self.record_policy(row.account_id)
        records = domains.expected_records(row.domain, row.dkim_selector, row.dkim_public_key, policy)
        checks = await judge_records(records, policy, self._lookup())
        now = self.clock()
        status = domains.next_status(
            domains.DomainStatus(DomainState(row.state), row.verified_at, row.failing_since),
            domains.verdict(checks, records),
            now=now,
            grace=timedelta(seconds=self.config.failing_grace_s),
        )
        saved = await domains_store.save_check(
            self.pool,
            row.account_id,
            row.domain,
            state=status.state.value,
            verified_at=status.verified_at,
            failing_since=status.failing_since,
            checked_at=now,
            record_checks={k.value: {"status": c.status.value, "reason": c.reason} for k, c in checks.items()},
        )
        if saved is None:  # deleted meanwhile
            raise not_found(f"Sending domain {row.domain}")
        if (saved.verified_at is None) != (row.verified_at is None):  # ready (or not) at once, in every gateway
            await announce(self.pool, CHANNEL, domains_changed(row.account_id))
        return DomainDetails(saved, records, checks)

    async def recheck_due(self, *, limit: int = 100, account_id: int | None = None) -> list[DomainDetails]:
        """Re-verify the verified (and FAILING) domains not checked for recheck_interval_s (one
        account's only, when given)."""
        cutoff = self.clock() - timedelta(seconds=self.config.recheck_interval_s)
        checked = []
        due = await domains_store.due_for_recheck(self.pool, checked_before=cutoff, limit=limit, account_id=account_id)
        for row in due:
            try:
                checked.append(await self._check(row))
            except ApiError as exc:
                if exc.status != 404:  # a domain deleted meanwhile is simply skipped
                    raise
        return checked

    # --- dedicated IPs ----------------------------------------------------------------------

    def _dedicated_pool_names(self, policy: PoolsFile) -> tuple[str, ...]:
        return tuple(sorted(name for name in policy.pools if name != SHARED_POOL))

    async def ip_status(self, account_id: int) -> IpStatus:
        pool_name = await domains_store.assigned_pool(self.pool, account_id)
        available = self._dedicated_pool_names(self.policy())
        if pool_name is None:
            return IpStatus(None, (), False, "no dedicated pool: mail leaves from the shared pool", available)
        ips = self._ips_of(pool_name)
        if await domains_store.has_verified_domain(self.pool, account_id):
            return IpStatus(pool_name, ips, True, "ready: a sending domain of the account is verified", available)
        return IpStatus(pool_name, ips, False, "waiting for a sending domain of the account to verify", available)

    async def assign(self, account_id: int, pool_name: str) -> IpStatus:
        known = self._dedicated_pool_names(self.policy())
        if pool_name not in known:
            names = ", ".join(known) or "(none)"
            raise invalid("pool", f"unknown dedicated pool {pool_name!r}; the pools of pools.toml are: {names}")
        await domains_store.assign_pool(self.pool, account_id, pool_name)
        return await self.ip_status(account_id)

    async def unassign(self, account_id: int) -> None:
        await domains_store.unassign_pool(self.pool, account_id)
