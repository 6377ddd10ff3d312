"""The gateway's PostgreSQL queries. Every query that reads account data is scoped by account_id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mailstream.gateway.keys import hash_api_key


@dataclass(frozen=True, slots=True)
class EmailRow:
    id: int
    account_id: int
    name: str
    state: str
    single_send_api: bool
    current_version: int
    subject: str
    from_name: str
    from_email: str
    reply_to: list[str]
    html: str
    text_body: str | None
    subscription_type: str
    tracking: bool
    created_at: datetime
    updated_at: datetime


EMAIL_COLUMNS = """e.id, e.account_id, e.name, e.state, e.single_send_api, e.current_version,
    v.subject, v.from_name, v.from_email, v.reply_to, v.html, v.text_body, v.subscription_type,
    v.tracking, e.created_at, e.updated_at"""


async def create_account(pool: asyncpg.Pool, name: str, api_key: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        account_id = await conn.fetchval("INSERT INTO accounts (name) VALUES ($1) RETURNING id", name)
        await conn.execute(
            "INSERT INTO api_keys (account_id, key_hash, key_prefix) VALUES ($1, $2, $3)",
            account_id,
            hash_api_key(api_key),
            api_key[:8],
        )
    return account_id


async def account_for_key(pool: asyncpg.Pool, api_key: str) -> int | None:
    return await pool.fetchval(
        "SELECT account_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", hash_api_key(api_key)
    )


async def create_email(pool: asyncpg.Pool, account_id: int, fields: dict[str, Any]) -> EmailRow:
    async with pool.acquire() as conn, conn.transaction():
        email_id = await conn.fetchval(
            "INSERT INTO emails (account_id, name) VALUES ($1, $2) RETURNING id", account_id, fields["name"]
        )
        await conn.execute(
            """INSERT INTO email_versions (email_id, version, subject, from_name, from_email, reply_to,
                   html, text_body, subscription_type, tracking)
               VALUES ($1, 1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            email_id,
            fields["subject"],
            fields["from_name"],
            fields["from_email"],
            fields["reply_to"],
            fields["html"],
            fields["text"],
            fields["subscription_type"],
            fields["tracking"],
        )
    return await get_email(pool, account_id, email_id)


async def get_email(pool: asyncpg.Pool, account_id: int, email_id: int) -> EmailRow | None:
    row = await pool.fetchrow(
        f"""SELECT {EMAIL_COLUMNS} FROM emails e
            JOIN email_versions v ON v.email_id = e.id AND v.version = e.current_version
            WHERE e.account_id = $1 AND e.id = $2""",
        account_id,
        email_id,
    )
    return EmailRow(**dict(row)) if row else None


async def set_single_send_api(pool: asyncpg.Pool, account_id: int, email_id: int) -> None:
    await pool.execute(
        "UPDATE emails SET single_send_api = true, updated_at = now() WHERE account_id = $1 AND id = $2",
        account_id,
        email_id,
    )


async def find_send_by_send_id(conn: asyncpg.Connection, account_id: int, send_id: str) -> str | None:
    return await conn.fetchval(
        "SELECT status_id::text FROM send_requests WHERE account_id = $1 AND send_id = $2", account_id, send_id
    )


async def insert_send_request(
    conn: asyncpg.Connection,
    *,
    status_id: str,
    message_id: str,
    account_id: int,
    send_id: str | None,
    email_id: int | None,
    recipient: str,
    requested_at: datetime,
    send_result: str | None = None,
) -> bool:
    """False when the account already has a send with this sendId (the caller reuses that one)."""
    inserted = await conn.fetchval(
        """INSERT INTO send_requests (status_id, message_id, account_id, send_id, email_id, recipient,
               requested_at, send_result, completed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $8::text,
                   CASE WHEN $8::text IS NULL THEN NULL ELSE $7::timestamptz END)
           ON CONFLICT (account_id, send_id) WHERE send_id IS NOT NULL DO NOTHING
           RETURNING true""",
        status_id,
        message_id,
        account_id,
        send_id,
        email_id,
        recipient,
        requested_at,
        send_result,
    )
    return bool(inserted)


async def send_status(pool: asyncpg.Pool, account_id: int, status_id: str) -> dict[str, Any] | None:
    """The gateway's accepted request joined with the tracker's outcome (read-only)."""
    row = await pool.fetchrow(
        """SELECT r.status_id::text AS status_id, r.requested_at,
                  r.send_result AS gateway_result, r.completed_at AS gateway_completed_at,
                  o.status, o.send_result, o.started_at, o.completed_at, o.event_id::text AS event_id,
                  o.event_created
           FROM send_requests r LEFT JOIN send_outcomes o ON o.status_id = r.status_id
           WHERE r.account_id = $1 AND r.status_id = $2""",
        account_id,
        status_id,
    )
    return dict(row) if row else None
