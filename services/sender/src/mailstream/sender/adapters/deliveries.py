"""The sender's delivery records: the de-duplication before SMTP."""

from __future__ import annotations

import asyncpg


class DeliveryRecords:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def finished_event(self, message_id: str) -> bytes | None:
        """The encoded outcome of a message whose delivery already ended, if any."""
        return await self._pool.fetchval("SELECT outcome_event FROM deliveries WHERE message_id = $1", message_id)

    async def record(self, message_id: str, outcome: str, event: bytes) -> None:
        await self._pool.execute(
            """INSERT INTO deliveries (message_id, outcome, outcome_event) VALUES ($1, $2, $3)
               ON CONFLICT (message_id) DO NOTHING""",
            message_id,
            outcome,
            event,
        )
