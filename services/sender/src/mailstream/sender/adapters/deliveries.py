"""The sender's delivery records: the de-duplication before SMTP.

Look-ups and inserts from concurrent messages are gathered for a few milliseconds and sent as
one statement (one round trip, one commit for many messages). Each caller still awaits its
own row: `record()` returns only once its row is committed, so the duplicate window (receiver
accepted, record not yet durable) grows by at most `linger` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg

K = TypeVar("K")
R = TypeVar("R")


class MicroBatch(Generic[K, R]):
    """Collects items for `linger` seconds (or `max_size` items), then runs `flush(items)`
    once, which returns a result per item."""

    def __init__(self, flush: Callable[[list[K]], Awaitable[list[R]]], *, linger: float, max_size: int) -> None:
        self._flush = flush
        self._linger = linger
        self._max = max_size
        self._items: list[K] = []
        self._futures: list[asyncio.Future[R]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, item: K) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._items.append(item)
        self._futures.append(future)
        if len(self._items) >= self._max:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._linger, self._start)
        return await future

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        items, futures = self._items, self._futures
        self._items, self._futures = [], []
        if items:
            asyncio.get_running_loop().create_task(self._run(items, futures))

    async def _run(self, items: list[K], futures: list[asyncio.Future[R]]) -> None:
        try:
            results = await self._flush(items)
        except Exception as exc:  # handed to every waiting caller
            for f in futures:
                if not f.done():
                    f.set_exception(exc)
            return
        for f, result in zip(futures, results, strict=True):
            if not f.done():
                f.set_result(result)


class DeliveryRecords:
    def __init__(self, pool: asyncpg.Pool, *, linger: float = 0.002, max_size: int = 500) -> None:
        self._pool = pool
        self._lookups: MicroBatch[str, bytes | None] = MicroBatch(self._lookup, linger=linger, max_size=max_size)
        self._inserts: MicroBatch[tuple[str, str, bytes], None] = MicroBatch(
            self._insert, linger=linger, max_size=max_size
        )

    async def finished_event(self, message_id: str) -> bytes | None:
        """The encoded outcome of a message whose delivery already ended, if any."""
        return await self._lookups.submit(message_id)

    async def record(self, message_id: str, outcome: str, event: bytes) -> None:
        """Returns once the row is committed (or was already there: the first outcome stays)."""
        await self._inserts.submit((message_id, outcome, event))

    async def _lookup(self, ids: list[str]) -> list[bytes | None]:
        rows = await self._pool.fetch(
            "SELECT message_id::text AS id, outcome_event FROM deliveries WHERE message_id = ANY($1::uuid[])", ids
        )
        found = {r["id"]: r["outcome_event"] for r in rows}
        return [found.get(i) for i in ids]

    async def _insert(self, rows: list[tuple[str, str, bytes]]) -> list[None]:
        await self._pool.execute(
            """INSERT INTO deliveries (message_id, outcome, outcome_event)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::bytea[])
               ON CONFLICT (message_id) DO NOTHING""",
            [r[0] for r in rows],
            [r[1] for r in rows],
            [r[2] for r in rows],
        )
        return [None] * len(rows)
