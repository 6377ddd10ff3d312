"""Accepted send requests, scheduled sends and the status read. Scoped by account_id.

send_outcome_statuses is the tracker's view: read here, never written.
"""

from __future__ import annotations

from typing import Any

import asyncpg

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
    """Due scheduled sends, locked for this transaction; rows another replica holds are skipped."""
    return await conn.fetch(
        """SELECT s.status_id, s.payload, r.recipient FROM scheduled_sends s
           JOIN send_requests r ON r.status_id = s.status_id
           WHERE s.released_at IS NULL AND s.canceled_at IS NULL AND s.send_at <= now()
           ORDER BY s.send_at LIMIT $1
           FOR UPDATE OF s SKIP LOCKED""",
        limit,
    )


async def mark_released(conn: asyncpg.Connection, status_ids: list[Any]) -> None:
    await conn.execute(
        "UPDATE scheduled_sends SET released_at = now(), payload = NULL WHERE status_id = ANY($1::uuid[])",
        status_ids,
    )


async def next_due_in(pool: asyncpg.Pool) -> float | None:
    """Seconds until the earliest pending scheduled send (negative when overdue), None if none."""
    return await pool.fetchval(
        """SELECT extract(epoch FROM min(send_at) - now())::float8 FROM scheduled_sends
           WHERE released_at IS NULL AND canceled_at IS NULL"""
    )
