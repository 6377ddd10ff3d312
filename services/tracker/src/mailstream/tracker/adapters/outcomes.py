"""The tracker's send_outcomes table."""

from __future__ import annotations

import asyncpg

from mailstream.tracker.statuses import StatusChange


async def apply_status(pool: asyncpg.Pool, change: StatusChange) -> bool:
    """Applies a status change; True if the row changed (so a repeated COMPLETE returns False)."""
    changed = await pool.fetchval(
        """INSERT INTO send_outcomes (status_id, message_id, account_id, status, send_result, started_at,
               completed_at, event_id, event_created)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (status_id) DO UPDATE SET
               status = EXCLUDED.status,
               send_result = COALESCE(EXCLUDED.send_result, send_outcomes.send_result),
               started_at = COALESCE(send_outcomes.started_at, EXCLUDED.started_at),
               completed_at = COALESCE(EXCLUDED.completed_at, send_outcomes.completed_at),
               event_id = COALESCE(send_outcomes.event_id, EXCLUDED.event_id),
               event_created = COALESCE(send_outcomes.event_created, EXCLUDED.event_created),
               updated_at = now()
           WHERE send_outcomes.status <> 'COMPLETE'
           RETURNING true""",
        change.status_id,
        change.message_id,
        change.account_id,
        change.status,
        change.send_result,
        change.started_at,
        change.completed_at,
        change.event_id,
        change.event_created,
    )
    return bool(changed)
