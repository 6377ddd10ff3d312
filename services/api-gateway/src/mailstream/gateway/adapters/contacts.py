"""Contacts (gateway-owned) and the tracker's suppression_reasons view (read only). Scoped by account_id."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from mailstream.gateway.suppression_list import ListFilter

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


async def list_suppressions(
    pool: asyncpg.Pool, account_id: int, contains: str, *, limit: int, offset: int = 0
) -> list[dict[str, Any]]:
    """The account's suppressions (address, reason), one row each, by address then reason: the
    addresses containing `contains` ("" = all), one page of limit rows."""
    rows = await pool.fetch(
        """SELECT address, reason FROM suppression_reasons
           WHERE account_id = $1 AND ($2 = '' OR strpos(address, $2) > 0)
           ORDER BY address, reason LIMIT $3 OFFSET $4""",
        account_id,
        contains.lower(),
        limit,
        offset,
    )
    return [dict(r) for r in rows]


async def suppression_page(
    pool: asyncpg.Pool,
    account_id: int,
    where: ListFilter,
    *,
    after: tuple[str, str] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The API's list: the account's suppressions matching `where`, by address then reason, past
    the cursor (address, reason); `limit` rows (ask one more to know there is a next page)."""
    after_address, after_reason = after or ("", "")
    rows = await pool.fetch(
        """SELECT address, reason, created_at, message_id, detail FROM suppression_reasons
           WHERE account_id = $1 AND (address, reason) > ($2, $3)
             AND ($4::text IS NULL OR reason = $4)
             AND ($5::timestamptz IS NULL OR created_at >= $5)
             AND ($6 = '' OR strpos(address, $6) > 0)
             AND ($7::text IS NULL OR right(address, length($7) + 1) = '@' || $7)
           ORDER BY address, reason LIMIT $8""",
        account_id,
        after_address,
        after_reason,
        where.reason,
        where.since,
        where.contains,
        where.domain,
        limit,
    )
    return [dict(r) for r in rows]


async def suppression_details(pool: asyncpg.Pool, account_id: int, email: str) -> list[dict[str, Any]]:
    """The address's current suppressions with when, the message and the email event that caused
    them when the tracker knows (its email_event_log: the BOUNCE, SPAMREPORT or STATUSCHANGE)."""
    rows = await pool.fetch(
        """SELECT s.address, s.reason, s.created_at, s.message_id, s.detail, e.id AS event_id, e.type AS event_type
           FROM suppression_reasons s
           LEFT JOIN LATERAL (
               SELECT id, type FROM email_event_log
               WHERE account_id = s.account_id AND recipient = s.address AND message_id = s.message_id
                 AND type = ANY($3::text[])
               ORDER BY created LIMIT 1) e ON true
           WHERE s.account_id = $1 AND s.address = $2 ORDER BY s.reason""",
        account_id,
        email.lower(),
        list(CAUSING_EVENT_TYPES),
    )
    return [dict(r) for r in rows]


# the tracker's email event types that suppress an address
CAUSING_EVENT_TYPES = ("BOUNCE", "SPAMREPORT", "STATUSCHANGE")


def _decoded(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("properties"), str):
        out["properties"] = json.loads(out["properties"])
    return out


async def list_contacts(pool: asyncpg.Pool, account_id: int, *, after: str, limit: int) -> list[dict[str, Any]]:
    """Contacts in address order after the cursor (an address; "" = from the first); one more
    than `limit` when there is a next page."""
    rows = await pool.fetch(
        "SELECT * FROM contacts WHERE account_id = $1 AND email > $2 ORDER BY email LIMIT $3",
        account_id,
        after.lower(),
        limit + 1,
    )
    return [_decoded(r) for r in rows]


async def delete_contact(pool: asyncpg.Pool, account_id: int, email: str) -> bool:
    """Deletes the gateway's contact record (the tracker's suppressions of the address stay)."""
    done = await pool.fetchval(
        "DELETE FROM contacts WHERE account_id = $1 AND email = $2 RETURNING true", account_id, email.lower()
    )
    return bool(done)


# Each suppression reason's twin among the contact's own statuses (set through the contacts API):
# the column, the value that stops mail, and the value that lifting the suppression leaves.
STATUS_OF_REASON: dict[str, tuple[str, bool | str, bool | str]] = {
    "BOUNCED": ("bounced", True, False),
    "SPAM_REPORT": ("spam_reported", True, False),
    "UNSUBSCRIBED": ("subscription_status", "UNSUBSCRIBED", "NOT_SPECIFIED"),
}


def status_says(contact: dict[str, Any] | None, reason: str) -> bool:
    """The contact's own status stops mail for this reason (e.g. `bounced` set through the API);
    a MANUAL suppression has no such twin."""
    if reason not in STATUS_OF_REASON:
        return False
    column, stops, _ = STATUS_OF_REASON[reason]
    return contact is not None and contact[column] == stops


async def clear_status(conn: asyncpg.Pool | asyncpg.Connection, account_id: int, email: str, reason: str) -> None:
    """The contact's own status for the reason, if set, is lifted with the tracker's suppression."""
    await clear_statuses(conn, account_id, [email], reason)


async def clear_statuses(
    conn: asyncpg.Pool | asyncpg.Connection, account_id: int, emails: list[str], reason: str | None
) -> None:
    """clear_status for many addresses at once; reason None: every reason's twin."""
    for each in STATUS_OF_REASON if reason is None else [reason]:
        if each not in STATUS_OF_REASON:
            continue
        column, stops, lifted = STATUS_OF_REASON[each]  # a column name from the table above, never input
        await conn.execute(
            f"""UPDATE contacts SET {column} = $3, updated_at = now()
                WHERE account_id = $1 AND email = ANY($2::text[]) AND {column} = $4""",
            account_id,
            [e.lower() for e in emails],
            lifted,
            stops,
        )


async def suppression_history(pool: asyncpg.Pool, account_id: int, email: str) -> list[dict[str, Any]]:
    """The tracker's suppression_change_log view (read only): the changes requested for the address."""
    rows = await pool.fetch(
        """SELECT event_id::text AS event_id, action, reason, changed, note, requested_by, requested_at, applied_at
           FROM suppression_change_log WHERE account_id = $1 AND address = $2 ORDER BY requested_at, event_id""",
        account_id,
        email.lower(),
    )
    return [dict(r) for r in rows]
