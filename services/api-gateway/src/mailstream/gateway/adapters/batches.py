"""SendGrid's batches (sendgrid_batches) and the scheduled sends a status change holds or lets go.
Scoped by account_id.

A status change and an accepted send of the batch meet on the batch row: the change locks it FOR
UPDATE (status_for_change), the accept path FOR SHARE (accepting.insert_scheduled), so that
scheduled_sends.paused is always the batch's pause, whichever commits first.
"""

from __future__ import annotations

import asyncpg

from mailstream.gateway.adapters.sends import EXPIRE_AFTER, cancel_many


async def create(pool: asyncpg.Pool, account_id: int, batch_id: str) -> None:
    await pool.execute("INSERT INTO sendgrid_batches (account_id, batch_id) VALUES ($1, $2)", account_id, batch_id)


async def exists(pool: asyncpg.Pool | asyncpg.Connection, account_id: int, batch_id: str) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT true FROM sendgrid_batches WHERE account_id = $1 AND batch_id = $2", account_id, batch_id
        )
    )


async def statuses(pool: asyncpg.Pool, account_id: int, batch_id: str | None = None) -> list[dict[str, str]]:
    """{batch_id, status} of the account's batches that have a status (or of the one batch)."""
    rows = await pool.fetch(
        """SELECT batch_id, status FROM sendgrid_batches
           WHERE account_id = $1 AND status IS NOT NULL AND ($2::text IS NULL OR batch_id = $2)
           ORDER BY updated_at, batch_id""",
        account_id,
        batch_id,
    )
    return [{"batch_id": r["batch_id"], "status": r["status"]} for r in rows]


async def status_for_change(conn: asyncpg.Connection, account_id: int, batch_id: str) -> tuple[bool, str | None]:
    """(the batch exists, its status or None), the row locked for this transaction."""
    row = await conn.fetchrow(
        "SELECT status FROM sendgrid_batches WHERE account_id = $1 AND batch_id = $2 FOR UPDATE",
        account_id,
        batch_id,
    )
    return (False, None) if row is None else (True, row["status"])


async def set_status(conn: asyncpg.Connection, account_id: int, batch_id: str, status: str | None) -> int:
    """Writes the batch's status and holds (pause) or lets go of its scheduled sends not released;
    returns how many sends it ended. Lifting a pause first cancels the sends 72 h past their
    send_at (SendGrid discards them as Expired); the others become due as usual (at once if past
    due). A cancel ends nothing here: the scheduler discards the batch's sends when they fall due,
    as SendGrid does, so that DELETE or PATCH before then undoes it."""
    await conn.execute(
        "UPDATE sendgrid_batches SET status = $3, updated_at = now() WHERE account_id = $1 AND batch_id = $2",
        account_id,
        batch_id,
        status,
    )
    expired = []
    if status != "pause":
        expired = await conn.fetch(
            """SELECT status_id FROM scheduled_sends
               WHERE account_id = $1 AND batch_id = $2 AND paused AND released_at IS NULL
                 AND canceled_at IS NULL AND send_at <= now() - $3::interval
               FOR UPDATE""",
            account_id,
            batch_id,
            EXPIRE_AFTER,
        )
        await cancel_many(conn, [r["status_id"] for r in expired])
    await conn.execute(
        """UPDATE scheduled_sends SET paused = $3
           WHERE account_id = $1 AND batch_id = $2 AND released_at IS NULL AND canceled_at IS NULL
             AND paused <> $3""",
        account_id,
        batch_id,
        status == "pause",
    )
    return len(expired)
