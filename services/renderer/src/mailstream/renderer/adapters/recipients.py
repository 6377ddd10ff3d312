"""Recipient statuses and dedicated pools, read through their owners' views: the gateway's
`contact_statuses`, the tracker's `suppression_reasons`, the gateway's `account_dedicated_pools`.

A batch asks for all its recipients in one query; pool assignments change rarely and are cached.
"""

from __future__ import annotations

import json

import asyncpg
from cachetools import TTLCache

from mailstream.renderer.ports import RecipientKey
from mailstream.renderer.rules import RecipientStatus

_STATUSES = """
SELECT q.account_id, q.address, c.properties, c.subscription_status, c.quarantined, c.double_opt_in, c.bounced,
       c.spam_reported,
       ARRAY(SELECT s.reason FROM suppression_reasons s WHERE s.account_id = q.account_id AND s.address = q.address)
           AS suppressed
FROM unnest($1::bigint[], $2::text[]) AS q(account_id, address)
LEFT JOIN contact_statuses c ON c.account_id = q.account_id AND c.email = q.address
"""


def _properties(raw: object) -> dict[str, str]:
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in data.items()}


def _status(row: asyncpg.Record) -> RecipientStatus:
    suppressed = frozenset(row["suppressed"] or ())
    if row["subscription_status"] is None:  # no contact row
        return RecipientStatus(properties={}, suppressed=suppressed)
    return RecipientStatus(
        properties=_properties(row["properties"]),
        subscription_status=row["subscription_status"],
        quarantined=row["quarantined"],
        double_opt_in=row["double_opt_in"],
        bounced=row["bounced"],
        spam_reported=row["spam_reported"],
        suppressed=suppressed,
    )


class Recipients:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.queries = 0  # round trips made (for tests and benchmarks)

    async def statuses(self, keys: set[RecipientKey]) -> dict[RecipientKey, RecipientStatus]:
        if not keys:
            return {}
        ordered = sorted(keys)
        self.queries += 1
        rows = await self._pool.fetch(_STATUSES, [k[0] for k in ordered], [k[1].lower() for k in ordered])
        return {(row["account_id"], row["address"]): _status(row) for row in rows}


class AccountPoolAssignments:
    """account id -> dedicated pool name, cached for `ttl` seconds (assignments change rarely); an
    account without one only for `miss_ttl`, so a pool that just became ready is used at once."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 30.0, miss_ttl: float = 2.0, capacity: int = 100_000) -> None:
        self._pool = pool
        self._cache: TTLCache[int, str] = TTLCache(maxsize=capacity, ttl=ttl)
        self._misses: TTLCache[int, bool] = TTLCache(maxsize=capacity, ttl=miss_ttl)

    async def dedicated_many(self, account_ids: set[int]) -> dict[int, str | None]:
        found: dict[int, str | None] = {a: self._cache[a] for a in account_ids if a in self._cache}
        found.update({a: None for a in account_ids if a in self._misses})
        missing = sorted(account_ids - found.keys())
        if missing:
            rows = await self._pool.fetch(
                "SELECT account_id, pool FROM account_dedicated_pools WHERE account_id = ANY($1::bigint[])", missing
            )
            assigned = {r["account_id"]: r["pool"] for r in rows}
            for account_id in missing:
                found[account_id] = assigned.get(account_id)
                if found[account_id] is None:
                    self._misses[account_id] = True
                else:
                    self._cache[account_id] = found[account_id]
        return found

    async def dedicated(self, account_id: int) -> str | None:
        return (await self.dedicated_many({account_id}))[account_id]
