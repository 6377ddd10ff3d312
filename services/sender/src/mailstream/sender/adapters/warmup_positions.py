"""Warm-up positions in PostgreSQL (warmup_positions): one cap shared by every sender process.

The messages of a batch ask at about the same moment; their takes are gathered for a few
milliseconds and each IP's are granted by one statement (one round trip per IP per batch, not
per message). The statement is `warmup.grant()` done atomically in the row: two processes'
reservations serialize on the row lock, so together they never get more than the cap.

A granted send that is then not delivered (throttled, 4xx, a crash) stays counted: the error is
on the side of fewer sends. If the database is down `take` raises (DATABASE_DOWN): the message
is not sent and its batch is consumed again, as for the delivery records.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import date

import asyncpg

from mailstream.core.batching import Batcher
from mailstream.sender.warmup import Window

# $4 sends wanted, $5 the cap. SET expressions see the old row (p) and RETURNING only the new
# one, hence last_granted. A row of an earlier period rolls over (EXCLUDED: counted from zero).
_RESERVE = """
INSERT INTO warmup_positions AS p (address, first_used_on, window_start, window_sent, last_granted)
VALUES ($1::text, $2::date, $3::timestamptz, LEAST($4::integer, $5::integer), LEAST($4::integer, $5::integer))
ON CONFLICT (address) DO UPDATE SET
    window_start = GREATEST(p.window_start, EXCLUDED.window_start),
    window_sent = CASE WHEN p.window_start >= EXCLUDED.window_start
                       THEN p.window_sent + LEAST($4::integer, GREATEST(0, $5::integer - p.window_sent))
                       ELSE EXCLUDED.window_sent END,
    last_granted = CASE WHEN p.window_start >= EXCLUDED.window_start
                        THEN LEAST($4::integer, GREATEST(0, $5::integer - p.window_sent))
                        ELSE EXCLUDED.window_sent END,
    updated_at = now()
RETURNING last_granted, first_used_on
"""

Take = tuple[str, Window, date]  # (address, window, today)


class PgWarmupPositions:
    def __init__(self, pool: asyncpg.Pool, *, linger: float = 0.002, max_size: int = 1000) -> None:
        self._pool = pool
        self._first_use: dict[str, date] = {}  # set once, never changes: cached for good
        self._takes: Batcher[Take, bool] = Batcher(self._flush, linger=linger, max_size=max_size, max_in_flight=4)

    @property
    def batches(self) -> int:
        """Flushes started: each is one statement per IP of the takes it gathered."""
        return self._takes.batches

    async def first_used_on(self, address: str) -> date | None:
        if address not in self._first_use:
            found = await self._pool.fetchval("SELECT first_used_on FROM warmup_positions WHERE address = $1", address)
            if found is None:
                return None  # never sent: asked again until it has (only warming IPs ask)
            self._first_use[address] = found
        return self._first_use[address]

    async def take(self, address: str, window: Window, *, today: date) -> bool:
        return await self._takes.submit((address, window, today))

    async def reserve(self, address: str, window: Window, wanted: int, *, today: date) -> int:
        """Up to `wanted` sends in `window`, within its cap; returns how many were granted."""
        row = await self._pool.fetchrow(_RESERVE, address, today, window.start, wanted, window.cap)
        self._first_use.setdefault(address, row["first_used_on"])
        return row["last_granted"]

    async def _flush(self, takes: list[Take]) -> list[bool]:
        groups: dict[tuple[str, Window], list[int]] = defaultdict(list)
        for n, (address, window, _) in enumerate(takes):
            groups[(address, window)].append(n)
        today = {address: day for address, _, day in takes}
        keys = list(groups)
        granted = await asyncio.gather(
            *(
                self.reserve(address, window, len(groups[(address, window)]), today=today[address])
                for address, window in keys
            )
        )
        answers = [False] * len(takes)
        for key, count in zip(keys, granted, strict=True):
            for n in groups[key][:count]:  # the first to ask are the ones sent
                answers[n] = True
        return answers
