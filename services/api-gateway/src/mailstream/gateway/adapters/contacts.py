"""Contacts (gateway-owned) and the tracker's suppression_reasons view (read only). Scoped by account_id."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

STATUS_COLUMNS = ("subscription_status", "quarantined", "double_opt_in", "bounced", "spam_reported")


async def upsert_contact(
    conn: asyncpg.Pool | asyncpg.Connection,
    account_id: int,
    email: str,
    *,
    properties: dict[str, str] | None = None,
    statuses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Create or update a contact: properties are merged, statuses given are set, others kept."""
    statuses = statuses or {}
    row = await conn.fetchrow(
        """INSERT INTO contacts (account_id, email, properties, subscription_status, quarantined, double_opt_in,
                                 bounced, spam_reported)
           VALUES ($1, $2, $3::jsonb, coalesce($4, 'NOT_SPECIFIED'), coalesce($5, false),
                   coalesce($6, 'NOT_REQUIRED'), coalesce($7, false), coalesce($8, false))
           ON CONFLICT (account_id, email) DO UPDATE SET
               properties = contacts.properties || EXCLUDED.properties,
               subscription_status = coalesce($4, contacts.subscription_status),
               quarantined = coalesce($5, contacts.quarantined),
               double_opt_in = coalesce($6, contacts.double_opt_in),
               bounced = coalesce($7, contacts.bounced),
               spam_reported = coalesce($8, contacts.spam_reported),
               updated_at = now()
           RETURNING *""",
        account_id,
        email.lower(),
        json.dumps(properties or {}),
        *(statuses.get(c) for c in STATUS_COLUMNS),
    )
    return _decoded(row)


async def get_contact(pool: asyncpg.Pool, account_id: int, email: str) -> dict[str, Any] | None:
    row = await pool.fetchrow("SELECT * FROM contacts WHERE account_id = $1 AND email = $2", account_id, email.lower())
    return _decoded(row) if row else None


async def suppressions_of(pool: asyncpg.Pool, account_id: int, email: str) -> list[str]:
    rows = await pool.fetch(
        "SELECT reason FROM suppression_reasons WHERE account_id = $1 AND address = $2 ORDER BY reason",
        account_id,
        email.lower(),
    )
    return [r["reason"] for r in rows]


def _decoded(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("properties"), str):
        out["properties"] = json.loads(out["properties"])
    return out
