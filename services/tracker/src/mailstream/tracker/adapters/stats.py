"""The tracker's `stats` table: increments added in the transaction of the changes they count."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from mailstream.schemas.counters import COUNTERS
from mailstream.tracker.stats import Delta, StatsKey

_COLUMNS = ", ".join(COUNTERS)
_ARRAYS = ", ".join(f"${i}::bigint[]" for i in range(4, 4 + len(COUNTERS)))
_ADDS = ", ".join(f"{c} = stats.{c} + EXCLUDED.{c}" for c in COUNTERS)
ADD = f"""INSERT INTO stats (account_id, dimension, dimension_id, {_COLUMNS})
          SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], {_ARRAYS})
          ON CONFLICT (account_id, dimension, dimension_id) DO UPDATE SET {_ADDS}, updated_at = now()"""


async def add(conn: asyncpg.Connection, totals: Mapping[StatsKey, Delta]) -> int:
    """Adds each key's summed increments in one statement; rows in one order (no deadlock between
    two trackers' transactions); returns the number of rows."""
    if not totals:
        return 0
    keys = sorted(totals, key=lambda k: (k.account_id, k.dimension, k.dimension_id))
    await conn.execute(
        ADD,
        [k.account_id for k in keys],
        [k.dimension for k in keys],
        [k.dimension_id for k in keys],
        *([int(totals[k].get(c, 0)) for k in keys] for c in COUNTERS),
    )
    return len(keys)
