"""Materializes the Faust statistics table into PostgreSQL's `stats` (absolute values: idempotent)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import asyncpg

from mailstream.tracker.stats import FIELDS, StatsKey

_COLUMNS = ", ".join(FIELDS)
_VALUES = ", ".join(f"${i}" for i in range(4, 4 + len(FIELDS)))
_UPDATES = ", ".join(f"{f} = EXCLUDED.{f}" for f in FIELDS)
UPSERT = f"""INSERT INTO stats (account_id, dimension, dimension_id, {_COLUMNS}, updated_at)
             VALUES ($1, $2, $3, {_VALUES}, now())
             ON CONFLICT (account_id, dimension, dimension_id) DO UPDATE SET {_UPDATES}, updated_at = now()"""


async def write(pool: asyncpg.Pool, rows: Iterable[tuple[StatsKey, Mapping[str, int]]]) -> int:
    args = [(k.account_id, k.dimension, k.dimension_id, *(int(c.get(f, 0)) for f in FIELDS)) for k, c in rows]
    if args:
        async with pool.acquire() as conn:
            await conn.executemany(UPSERT, args)
    return len(args)
