"""The sender's delivery records: the de-duplication before SMTP.

Look-ups and inserts from concurrent messages are gathered for a few milliseconds and sent as
one statement (one round trip, one commit for many messages). Each caller still awaits its
own row: `record()` returns only once its row is committed, so the duplicate window (receiver
accepted, record not yet durable) grows by at most `linger` seconds.
"""

from __future__ import annotations

import asyncpg

from mailstream.core.batching import Batcher


class DeliveryRecords:
    def __init__(self, pool: asyncpg.Pool, *, linger: float = 0.002, max_size: int = 500, in_flight: int = 4) -> None:
        self._pool = pool
        self._lookups: Batcher[str, bytes | None] = Batcher(
            self._lookup, linger=linger, max_size=max_size, max_in_flight=in_flight
        )
        self._inserts: Batcher[tuple[str, str, bytes], None] = Batcher(
            self._insert, linger=linger, max_size=max_size, max_in_flight=in_flight
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
