"""Accepted send requests, scheduled sends and the status read. Scoped by account_id.

send_outcome_statuses is the tracker's view: read here, never written.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg

# A send held by its batch's pause is discarded this long after its send_at (SendGrid's Expired).
EXPIRE_AFTER = timedelta(hours=72)

STATUS_SELECT = """SELECT r.status_id::text AS status_id, r.requested_at,
          r.send_result AS gateway_result, r.completed_at AS gateway_completed_at, r.canceled_at, r.send_at,
          o.status, o.send_result, o.started_at, o.completed_at, o.event_id::text AS event_id, o.event_created
   FROM send_requests r LEFT JOIN send_outcome_statuses o ON o.status_id = r.status_id"""


async def send_status(
    pool: asyncpg.Pool | asyncpg.Connection, account_id: int, status_id: str
) -> dict[str, Any] | None:
    """The gateway's accepted request joined with the tracker's outcome (read-only)."""
    row = await pool.fetchrow(f"{STATUS_SELECT} WHERE r.account_id = $1 AND r.status_id = $2", account_id, status_id)
    return dict(row) if row else None


async def statuses_by_recipient(
    pool: asyncpg.Pool | asyncpg.Connection, account_id: int, recipient: str, *, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    """The account's sends to an address (case-insensitive), newest first: one page of limit rows."""
    rows = await pool.fetch(
        f"""{STATUS_SELECT} WHERE r.account_id = $1 AND lower(r.recipient) = lower($2)
            ORDER BY r.requested_at DESC, r.status_id LIMIT $3 OFFSET $4""",
        account_id,
        recipient,
        limit,
        offset,
    )
    return [dict(row) for row in rows]


async def cancel_scheduled(conn: asyncpg.Connection, account_id: int, status_id: str) -> bool:
    """Cancel a scheduled send not released yet. If the scheduler holds the row, this waits for
    its transaction and then finds it released: a send is either canceled or released, never both."""
    canceled = await conn.fetchval(
        """UPDATE scheduled_sends SET canceled_at = now(), payload = NULL
           WHERE account_id = $1 AND status_id = $2 AND released_at IS NULL AND canceled_at IS NULL
           RETURNING true""",
        account_id,
        status_id,
    )
    if canceled:
        await conn.execute(
            "UPDATE send_requests SET canceled_at = now() WHERE account_id = $1 AND status_id = $2",
            account_id,
            status_id,
        )
    return bool(canceled)


async def lock_due(conn: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Due scheduled sends, locked for this transaction; rows another replica holds are skipped.
    `discard` is true for a send whose SendGrid batch is canceled (its batch status read in the
    same query); a paused batch's sends are not due (scheduled_sends.paused)."""
    return await conn.fetch(
        """SELECT s.status_id, s.payload, r.recipient, coalesce(b.status = 'cancel', false) AS discard
           FROM scheduled_sends s
           JOIN send_requests r ON r.status_id = s.status_id
           LEFT JOIN sendgrid_batches b ON b.account_id = s.account_id AND b.batch_id = s.batch_id
           WHERE s.released_at IS NULL AND s.canceled_at IS NULL AND NOT s.paused AND s.send_at <= now()
             AND b.status IS DISTINCT FROM 'pause'
           ORDER BY s.send_at LIMIT $1
           FOR UPDATE OF s SKIP LOCKED""",
        limit,
    )


async def mark_released(conn: asyncpg.Connection, status_ids: list[Any]) -> None:
    await conn.execute(
        "UPDATE scheduled_sends SET released_at = now(), payload = NULL WHERE status_id = ANY($1::uuid[])",
        status_ids,
    )


async def cancel_many(conn: asyncpg.Connection, status_ids: list[Any]) -> None:
    """Ends scheduled sends (locked by the caller) as canceled: their status becomes CANCELED."""
    if not status_ids:
        return
    await conn.execute(
        """WITH ended AS (
               UPDATE scheduled_sends SET canceled_at = now(), payload = NULL
               WHERE status_id = ANY($1::uuid[]) RETURNING status_id)
           UPDATE send_requests r SET canceled_at = now() FROM ended WHERE r.status_id = ended.status_id""",
        status_ids,
    )


async def lock_expired(conn: asyncpg.Connection, limit: int) -> list[Any]:
    """Status ids of paused sends EXPIRE_AFTER past their send_at, locked; others' locks skipped."""
    rows = await conn.fetch(
        """SELECT status_id FROM scheduled_sends
           WHERE released_at IS NULL AND canceled_at IS NULL AND paused AND send_at <= now() - $2::interval
           ORDER BY send_at LIMIT $1
           FOR UPDATE SKIP LOCKED""",
        limit,
        EXPIRE_AFTER,
    )
    return [r["status_id"] for r in rows]


async def next_due_in(pool: asyncpg.Pool) -> float | None:
    """Seconds until the earliest pending scheduled send not paused (negative when overdue), None if none."""
    return await pool.fetchval(
        """SELECT extract(epoch FROM min(send_at) - now())::float8 FROM scheduled_sends
           WHERE released_at IS NULL AND canceled_at IS NULL AND NOT paused"""
    )
