"""The tracker's tracked_messages table: message id -> account, recipients, email, SMTP token."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from mailstream.tracker.engagement import TrackedMessage


async def remember(pool: asyncpg.Pool, msg: TrackedMessage, rendered_at: datetime) -> bool:
    """Stores a rendered message; True the first time (a redelivered record returns False)."""
    inserted = await pool.fetchval(
        """INSERT INTO tracked_messages (message_id, account_id, recipients, email_id, smtp_token_id, rendered_at)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING RETURNING true""",
        uuid.UUID(msg.message_id),
        msg.account_id,
        list(msg.recipients),
        msg.email_id,
        msg.smtp_token_id,
        rendered_at,
    )
    return bool(inserted)


async def find(pool: asyncpg.Pool, message_id: str) -> TrackedMessage | None:
    try:
        key = uuid.UUID(message_id)
    except ValueError:
        return None
    row = await pool.fetchrow(
        "SELECT account_id, recipients, email_id, smtp_token_id FROM tracked_messages WHERE message_id = $1", key
    )
    if row is None:
        return None
    return TrackedMessage(
        message_id=str(key),
        account_id=row["account_id"],
        recipients=tuple(row["recipients"]),
        email_id=row["email_id"],
        smtp_token_id=row["smtp_token_id"],
    )
