"""The tracker's `stats_counters` view, read only and scoped by account_id."""

from __future__ import annotations

from typing import Any

import asyncpg

from mailstream.schemas.counters import COUNTERS


async def stats_row(pool: asyncpg.Pool, account_id: int, dimension: str, dimension_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"""SELECT {", ".join(COUNTERS)}, updated_at FROM stats_counters
            WHERE account_id = $1 AND dimension = $2 AND dimension_id = $3""",
        account_id,
        dimension,
        dimension_id,
    )
    return dict(row) if row else None


async def token_exists(pool: asyncpg.Pool, account_id: int, token_id: str) -> bool:
    """The SMTP token (gateway-owned smtp_tokens, issue 7) belongs to the account."""
    return bool(
        await pool.fetchval("SELECT true FROM smtp_tokens WHERE account_id = $1 AND id = $2", account_id, token_id)
    )
