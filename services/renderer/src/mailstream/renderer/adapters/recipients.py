"""Reads what other services know about a recipient (read-only): the gateway's `contacts` row
and the tracker's `suppressions` rows, in one round trip; and the sender's `account_pools`."""

from __future__ import annotations

import json
import time

import asyncpg

from mailstream.renderer.rules import RecipientStatus

_STATUS = """
SELECT c.properties, c.subscription_status, c.quarantined, c.double_opt_in, c.bounced, c.spam_reported,
       ARRAY(SELECT s.reason FROM suppressions s WHERE s.account_id = $1 AND s.address = $2) AS suppressed
FROM (SELECT 1) AS one LEFT JOIN contacts c ON c.account_id = $1 AND c.email = $2
"""


def _properties(raw: object) -> dict[str, str]:
    data = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(data, dict):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in data.items()}


class Recipients:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def status(self, account_id: int, address: str) -> RecipientStatus:
        row = await self._pool.fetchrow(_STATUS, account_id, address.lower())
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


class AccountPoolAssignments:
    """account id -> dedicated pool name, cached for `ttl` seconds (assignments change rarely)."""

    def __init__(self, pool: asyncpg.Pool, ttl: float = 30.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._cache: dict[int, tuple[float, str | None]] = {}

    async def dedicated(self, account_id: int) -> str | None:
        now = time.monotonic()
        hit = self._cache.get(account_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        name = await self._pool.fetchval("SELECT pool FROM account_pools WHERE account_id = $1", account_id)
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[account_id] = (now + self._ttl, name)
        return name
