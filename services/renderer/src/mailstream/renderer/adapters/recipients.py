"""Reads what other services know about a recipient (read-only): the gateway's `contacts` row
and the tracker's `suppressions` rows; and the sender's `account_pools`.

Recipient lookups are coalesced: the agent's concurrent actors ask one at a time, and all the
addresses asked for while a query is in flight go in the next one (one round trip for many
messages). The connection is kept between queries while lookups keep coming, so the pool's
reset round trip is paid once per idle period instead of once per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import asyncpg

from mailstream.renderer.rules import RecipientStatus

_STATUSES = """
SELECT q.i, c.properties, c.subscription_status, c.quarantined, c.double_opt_in, c.bounced, c.spam_reported,
       ARRAY(SELECT s.reason FROM suppressions s WHERE s.account_id = q.account_id AND s.address = q.address)
           AS suppressed
FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS q(account_id, address, i)
LEFT JOIN contacts c ON c.account_id = q.account_id AND c.email = q.address
"""

Key = tuple[int, str]


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
    def __init__(self, pool: asyncpg.Pool, *, max_batch: int = 256, keep_idle: float = 0.5) -> None:
        self._pool = pool
        self._max_batch = max_batch
        self._keep_idle = keep_idle  # seconds the connection is kept once no lookup is waiting
        self._waiting: dict[Key, asyncio.Future[RecipientStatus]] = {}
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        self.queries = 0  # round trips made (for tests and benchmarks)

    async def status(self, account_id: int, address: str) -> RecipientStatus:
        key = (account_id, address.lower())
        future = self._waiting.get(key)
        if future is None:
            future = self._waiting[key] = asyncio.get_running_loop().create_future()
            self._arrived.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._serve())
        return await asyncio.shield(future)  # a cancelled caller does not cancel the others' lookup

    async def _fetch(self, conn: asyncpg.Connection, keys: list[Key]) -> dict[Key, RecipientStatus]:
        self.queries += 1
        rows = await conn.fetch(_STATUSES, [k[0] for k in keys], [k[1] for k in keys])
        return {keys[row["i"] - 1]: _status(row) for row in rows}

    async def _serve(self) -> None:
        conn: asyncpg.Connection | None = None
        batch: dict[Key, asyncio.Future[RecipientStatus]] = {}
        try:
            while True:
                if not self._waiting:
                    self._arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), self._keep_idle)
                    if not self._waiting:
                        self._worker = None  # decided before any await: the next lookup starts a new worker
                        return
                keys = list(self._waiting)[: self._max_batch]
                batch = {key: self._waiting.pop(key) for key in keys}
                try:
                    if conn is None:
                        conn = await self._pool.acquire()
                    found = await self._fetch(conn, keys)
                except Exception as exc:  # each caller gets it (transient ones are retried by the agent)
                    if conn is not None:
                        await self._release(conn)
                        conn = None
                    for future in batch.values():
                        if not future.done():
                            future.set_exception(exc)
                            future.exception()  # retrieved: a caller that went away must not log it
                    continue
                for key, future in batch.items():
                    if not future.done():
                        future.set_result(found[key])
        finally:
            for future in batch.values():
                future.cancel()  # only when this worker itself is cancelled mid-query (shutdown)
            if conn is not None:
                await self._release(conn)

    async def _release(self, conn: asyncpg.Connection) -> None:
        with contextlib.suppress(Exception):  # a broken connection is terminated by the pool
            await self._pool.release(conn)


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
