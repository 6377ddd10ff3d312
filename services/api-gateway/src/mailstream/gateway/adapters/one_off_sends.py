"""The SQL of one-off sends to many contacts: the send, its audience pages, its recipients' rows
and its progress. Scoped by account_id.

send_outcome_statuses is the tracker's view: read here, never written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from mailstream.gateway.adapters.accepting import RequestRow
from mailstream.gateway.one_off import ADDRESSES, Audience, Tally, filter_sql

Conn = asyncpg.Pool | asyncpg.Connection


def _decoded(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    out = dict(row)
    for key in ("audience", "custom_properties"):
        if isinstance(out.get(key), str):
            out[key] = json.loads(out[key])
    return out


async def email_version_facts(conn: Conn, account_id: int, email_id: int) -> dict[str, Any] | None:
    """The email's state and current version (what a new one-off send pins)."""
    row = await conn.fetchrow(
        "SELECT id, state, current_version FROM emails WHERE account_id = $1 AND id = $2", account_id, email_id
    )
    return dict(row) if row else None


async def pinned_email(conn: Conn, account_id: int, email_id: int, version: int) -> dict[str, Any] | None:
    """What deciding a recipient needs of the pinned version: the email's state, the version's
    subscription type and From."""
    row = await conn.fetchrow(
        """SELECT e.id, e.account_id, e.state, e.single_send_api, v.version AS current_version,
                  v.subscription_type, v.from_email
           FROM emails e JOIN email_versions v ON v.email_id = e.id AND v.version = $3
           WHERE e.account_id = $1 AND e.id = $2""",
        account_id,
        email_id,
        version,
    )
    return dict(row) if row else None


async def insert_one_off(
    conn: asyncpg.Connection,
    *,
    one_off_send_id: str,
    account_id: int,
    idempotency_key: str | None,
    email_id: int,
    email_version: int,
    audience: Audience,
    custom_properties: dict[str, Any],
    state: str,
    send_at: datetime | None,
    addresses: Sequence[str] = (),
) -> dict[str, Any] | None:
    """The new one-off send, or None when one with this id (its idempotency key) exists."""
    row = await conn.fetchrow(
        """INSERT INTO one_off_sends (id, account_id, idempotency_key, email_id, email_version, audience,
                                      custom_properties, state, send_at)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8, $9)
           ON CONFLICT DO NOTHING RETURNING *""",
        one_off_send_id,
        account_id,
        idempotency_key,
        email_id,
        email_version,
        json.dumps(audience.to_json()),
        json.dumps(custom_properties),
        state,
        send_at,
    )
    if row is not None and audience.kind == ADDRESSES:
        await conn.execute(
            """INSERT INTO one_off_send_addresses (one_off_send_id, address)
               SELECT $1, a FROM unnest($2::text[]) AS a ON CONFLICT DO NOTHING""",
            one_off_send_id,
            sorted({a.lower() for a in addresses}),
        )
    return _decoded(row)


async def get_one_off(
    conn: Conn, account_id: int, one_off_send_id: str, *, lock: bool = False
) -> dict[str, Any] | None:
    sql = "SELECT * FROM one_off_sends WHERE account_id = $1 AND id = $2" + (" FOR UPDATE" if lock else "")
    return _decoded(await conn.fetchrow(sql, account_id, one_off_send_id))


async def by_idempotency_key(conn: Conn, account_id: int, key: str) -> dict[str, Any] | None:
    return _decoded(
        await conn.fetchrow(
            "SELECT * FROM one_off_sends WHERE account_id = $1 AND idempotency_key = $2", account_id, key
        )
    )


async def list_one_offs(conn: Conn, account_id: int, *, limit: int, after: str | None) -> list[dict[str, Any]]:
    """Newest first, limit+1 rows (the extra one says there is a next page); `after` is the last id listed."""
    rows = await conn.fetch(
        """SELECT * FROM one_off_sends o WHERE o.account_id = $1
             AND ($2::uuid IS NULL OR (o.created_at, o.id) < (SELECT created_at, id FROM one_off_sends
                                                              WHERE account_id = $1 AND id = $2::uuid))
           ORDER BY o.created_at DESC, o.id DESC LIMIT $3""",
        account_id,
        after,
        limit + 1,
    )
    return [_decoded(r) for r in rows]


async def list_one_offs_of_email(conn: Conn, account_id: int, email_id: int, *, limit: int) -> list[dict[str, Any]]:
    """An email's one-off sends, newest first (the console's email page)."""
    rows = await conn.fetch(
        """SELECT * FROM one_off_sends o WHERE o.account_id = $1 AND o.email_id = $2
           ORDER BY o.created_at DESC, o.id DESC LIMIT $3""",
        account_id,
        email_id,
        limit,
    )
    return [_decoded(r) for r in rows]


async def tally(conn: Conn, account_id: int, one_off_send_id: str) -> Tally:
    """Its recipients' statuses counted: the gateway's result (a skip) or the tracker's outcome."""
    rows = await conn.fetch(
        """SELECT r.send_result AS gateway_result, o.status, o.send_result, count(*) AS n
           FROM send_requests r LEFT JOIN send_outcome_statuses o ON o.status_id = r.status_id
           WHERE r.account_id = $1 AND r.one_off_send_id = $2
           GROUP BY 1, 2, 3""",
        account_id,
        one_off_send_id,
    )
    return Tally(tuple((r["gateway_result"], r["status"], r["send_result"], r["n"]) for r in rows))


async def cancel(conn: asyncpg.Connection, account_id: int, one_off_send_id: str) -> dict[str, Any] | None:
    """Cancels an active one-off send: waits for the fan-out's batch in hand (the row lock), then
    no further batch starts. A send canceled before its fan-out started counts its audience now."""
    row = await get_one_off(conn, account_id, one_off_send_id, lock=True)
    if row is None or row["state"] not in ("SCHEDULED", "QUEUED", "SENDING"):
        return row
    targeted = row["targeted"]
    if targeted is None:
        targeted = await count_audience(conn, row, started_at=None)
    return _decoded(
        await conn.fetchrow(
            """UPDATE one_off_sends SET state = 'CANCELED', canceled_at = now(), targeted = $2
               WHERE id = $1 RETURNING *""",
            one_off_send_id,
            targeted,
        )
    )


# ---- the fan-out -----------------------------------------------------------------------------


async def claim_due(conn: asyncpg.Connection) -> dict[str, Any] | None:
    """An active one-off send whose turn it is (least recently served), locked for this
    transaction; one another fan-out holds is skipped."""
    return _decoded(
        await conn.fetchrow(
            """SELECT * FROM one_off_sends
               WHERE state IN ('QUEUED', 'SENDING') OR (state = 'SCHEDULED' AND send_at <= now())
               ORDER BY last_batch_at NULLS FIRST, created_at
               LIMIT 1 FOR UPDATE SKIP LOCKED"""
        )
    )


def _contacts_where(row: dict[str, Any], first_param: int) -> tuple[str, list]:
    audience = Audience.from_json(row["audience"])
    return filter_sql(audience.filters, first_param)


async def count_audience(conn: Conn, row: dict[str, Any], *, started_at: datetime | None) -> int:
    """How many recipients the audience has (contacts created up to started_at, if given)."""
    if row["audience"]["type"] == ADDRESSES:
        return await conn.fetchval("SELECT count(*) FROM one_off_send_addresses WHERE one_off_send_id = $1", row["id"])
    where, args = _contacts_where(row, 3)
    return await conn.fetchval(
        f"""SELECT count(*) FROM contacts c
            WHERE c.account_id = $1 AND ($2::timestamptz IS NULL OR c.created_at <= $2) AND {where}""",
        row["account_id"],
        started_at,
        *args,
    )


async def start(conn: asyncpg.Connection, one_off_send_id: Any, targeted: int) -> dict[str, Any]:
    return _decoded(
        await conn.fetchrow(
            """UPDATE one_off_sends SET state = 'SENDING', started_at = now(), targeted = $2
               WHERE id = $1 RETURNING *""",
            one_off_send_id,
            targeted,
        )
    )


async def audience_page(conn: Conn, row: dict[str, Any], *, limit: int) -> list[str]:
    """The next recipients after the cursor, in address order (contacts created after the
    fan-out started are not in the audience)."""
    cursor = row["cursor_address"] or ""
    if row["audience"]["type"] == ADDRESSES:
        rows = await conn.fetch(
            """SELECT address FROM one_off_send_addresses WHERE one_off_send_id = $1 AND address > $2
               ORDER BY address LIMIT $3""",
            row["id"],
            cursor,
            limit,
        )
    else:
        where, args = _contacts_where(row, 5)
        rows = await conn.fetch(
            f"""SELECT c.email AS address FROM contacts c
                WHERE c.account_id = $1 AND c.created_at <= $2 AND c.email > $3 AND {where}
                ORDER BY c.email LIMIT $4""",
            row["account_id"],
            row["started_at"],
            cursor,
            limit,
            *args,
        )
    return [r["address"] for r in rows]


INSERT_RECIPIENTS = """
INSERT INTO send_requests (status_id, message_id, account_id, send_id, email_id, recipient, requested_at,
                           send_result, completed_at, one_off_send_id)
SELECT u.status_id, u.message_id, $6::bigint, u.send_id, $7::bigint, u.recipient, $8::timestamptz, u.send_result,
       CASE WHEN u.send_result IS NULL THEN NULL ELSE $8::timestamptz END, $9::uuid
FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[]) AS u(status_id, message_id, send_id,
                                                                            recipient, send_result)
ON CONFLICT DO NOTHING  -- a batch fanned out again: its rows exist (their ids derive from the sendId)
RETURNING status_id
"""


async def insert_recipients(conn: asyncpg.Connection, one_off_send_id: Any, rows: Sequence[RequestRow]) -> set[Any]:
    """The recipients' rows in one statement; returns the status ids inserted (not those that exist)."""
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda r: r.status_id)
    first = ordered[0]
    inserted = await conn.fetch(
        INSERT_RECIPIENTS,
        [r.status_id for r in ordered],
        [r.message_id for r in ordered],
        [r.send_id for r in ordered],
        [r.recipient for r in ordered],
        [r.send_result for r in ordered],
        first.account_id,
        first.email_id,
        first.requested_at,
        one_off_send_id,
    )
    return {r["status_id"] for r in inserted}


async def advance(
    conn: asyncpg.Connection, one_off_send_id: Any, *, cursor: str | None, count: int, done: bool
) -> None:
    """Moves the cursor past a batch; a last batch ends the fan-out (targeted becomes exact)."""
    await conn.execute(
        """UPDATE one_off_sends SET cursor_address = coalesce($2, cursor_address), processed = processed + $3,
               last_batch_at = clock_timestamp(),
               state = CASE WHEN $4 THEN 'DONE' ELSE state END,
               completed_at = CASE WHEN $4 THEN now() ELSE completed_at END,
               targeted = CASE WHEN $4 THEN processed + $3 ELSE targeted END
           WHERE id = $1""",
        one_off_send_id,
        cursor,
        count,
        done,
    )
