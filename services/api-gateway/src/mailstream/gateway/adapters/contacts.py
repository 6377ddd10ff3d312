"""Contacts (gateway-owned) and the tracker's suppressions (read only). Scoped by account_id."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from mailstream.gateway.adapters.emails import EMAIL_COLUMNS, EmailRow
from mailstream.gateway.rules import RecipientFacts

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
        "SELECT reason FROM suppressions WHERE account_id = $1 AND address = $2 ORDER BY reason",
        account_id,
        email.lower(),
    )
    return [r["reason"] for r in rows]


async def recipient_facts(pool: asyncpg.Pool, account_id: int, email: str) -> RecipientFacts:
    """The contact's statuses and the tracker's suppressions for one address, in one round trip."""
    row = await pool.fetchrow(
        """SELECT c.subscription_status, c.quarantined, c.double_opt_in, c.bounced, c.spam_reported,
                  ARRAY(SELECT s.reason FROM suppressions s WHERE s.account_id = $1 AND s.address = $2) AS reasons
           FROM (SELECT 1) one LEFT JOIN contacts c ON c.account_id = $1 AND c.email = $2""",
        account_id,
        email.lower(),
    )
    statuses = {k: row[k] for k in STATUS_COLUMNS if row[k] is not None}
    return RecipientFacts(**statuses, suppressions=frozenset(row["reasons"]))


def _decoded(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("properties"), str):
        out["properties"] = json.loads(out["properties"])
    return out


async def send_facts(
    pool: asyncpg.Pool | asyncpg.Connection, account_id: int, email_id: int, address: str, from_domain: str | None
) -> tuple[EmailRow | None, RecipientFacts, bool]:
    """The email (current version), the recipient's facts, and whether the From domain (the
    override's, else the email's) is a verified sending domain of the account: one round trip."""
    row = await pool.fetchrow(
        f"""SELECT {EMAIL_COLUMNS},
                   c.subscription_status, c.quarantined, c.double_opt_in, c.bounced, c.spam_reported,
                   ARRAY(SELECT s.reason FROM suppressions s WHERE s.account_id = $1 AND s.address = $3) AS reasons,
                   EXISTS(SELECT 1 FROM sending_domains d
                          WHERE d.account_id = $1 AND d.verified_at IS NOT NULL
                            AND d.domain = lower(coalesce($4::text, split_part(v.from_email, '@', 2)))) AS domain_ok
            FROM (SELECT 1) one
            LEFT JOIN (emails e JOIN email_versions v ON v.email_id = e.id AND v.version = e.current_version)
                   ON e.account_id = $1 AND e.id = $2
            LEFT JOIN contacts c ON c.account_id = $1 AND c.email = $3""",
        account_id,
        email_id,
        address.lower(),
        from_domain,
    )
    email = EmailRow(**{f: row[f] for f in EmailRow.__slots__}) if row["id"] is not None else None
    statuses = {k: row[k] for k in STATUS_COLUMNS if row[k] is not None}
    return email, RecipientFacts(**statuses, suppressions=frozenset(row["reasons"])), row["domain_ok"]
