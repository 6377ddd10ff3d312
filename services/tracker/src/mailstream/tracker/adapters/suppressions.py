"""The tracker's suppressions table (read by the gateway and the renderer), and the history of the
changes requested through email.suppression.changes."""

from __future__ import annotations

import uuid

import asyncpg

from mailstream.schemas import SuppressionAction, SuppressionChanged
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


async def apply_changes(conn: asyncpg.Connection, changes: list[SuppressionChanged]) -> list[list[str]]:
    """Applies requested changes in order and keeps each in suppression_history; returns, for each,
    the suppression reasons it lifted (a REMOVE) or added (an ADD), as the database found them."""
    results = []
    for change in changes:
        address = change.address.lower()
        if change.action is SuppressionAction.REMOVE:
            rows = await conn.fetch(
                """DELETE FROM suppressions WHERE account_id = $1 AND address = $2 AND ($3::text IS NULL OR reason = $3)
                   RETURNING reason""",
                change.account_id,
                address,
                change.reason,
            )
        else:
            rows = await conn.fetch(
                """INSERT INTO suppressions (account_id, address, reason, detail) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (account_id, address, reason) DO NOTHING RETURNING reason""",
                change.account_id,
                address,
                change.reason or "UNSUBSCRIBED",
                change.note,
            )
        changed = sorted(r["reason"] for r in rows)
        await conn.execute(
            """INSERT INTO suppression_history (event_id, account_id, address, action, reason, changed, note,
                                                requested_by, requested_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (event_id) DO NOTHING""",
            uuid.UUID(change.event_id),
            change.account_id,
            address,
            change.action.value,
            change.reason,
            changed,
            change.note,
            change.requested_by,
            change.occurred_at,
        )
        results.append(changed)
    return results
