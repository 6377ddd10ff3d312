"""The tracker's suppressions table (read by the gateway and the renderer)."""

from __future__ import annotations

import uuid

import asyncpg

from mailstream.tracker.suppression import Suppression

SUPPRESS_ALL = """INSERT INTO suppressions (account_id, address, reason, message_id, detail)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::uuid[], $5::text[])
           ON CONFLICT (account_id, address, reason) DO NOTHING"""


async def suppress_all(conn: asyncpg.Connection, suppressions: list[Suppression]) -> None:
    """Records suppressions in one statement (the first reason of its kind for an address is kept)."""
    if not suppressions:
        return
    ordered = sorted(suppressions, key=lambda s: (s.account_id, s.address, s.reason))
    await conn.execute(
        SUPPRESS_ALL,
        [s.account_id for s in ordered],
        [s.address for s in ordered],
        [s.reason for s in ordered],
        [uuid.UUID(s.message_id) if s.message_id else None for s in ordered],
        [s.detail for s in ordered],
    )


async def already_reported(pool: asyncpg.Pool, account_id: int, address: str, message_id: str) -> bool:
    """A spam report for this message and address was already taken (a re-sent report or webhook retry)."""
    found = await pool.fetchval(
        """SELECT true FROM suppressions
           WHERE account_id = $1 AND address = $2 AND reason = 'SPAM_REPORT' AND message_id = $3""",
        account_id,
        address.lower(),
        uuid.UUID(message_id),
    )
    return bool(found)
