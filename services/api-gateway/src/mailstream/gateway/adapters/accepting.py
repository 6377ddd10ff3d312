"""The SQL of accepting sends a batch at a time: the facts a batch of sends needs (one query),
and its rows (one statement per table), in the caller's transaction. Scoped by account_id.

suppression_reasons is the tracker's view: read here, never written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mailstream.gateway.adapters import sends
from mailstream.gateway.rules import RecipientFacts

# Errors that belong to one send's input (a NUL in a property): only that send fails.
BAD_INPUT = (asyncpg.DataError, ValueError)
STATUS_COLUMNS = ("subscription_status", "quarantined", "double_opt_in", "bounced", "spam_reported")


@dataclass(frozen=True, slots=True)
class EmailFacts:
    """What accepting a send needs of an email: its current version's state, never its content."""

    id: int
    account_id: int
    state: str
    single_send_api: bool
    current_version: int
    subscription_type: str
    from_email: str
    automation: bool = False


async def email_facts(pool: asyncpg.Pool, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], EmailFacts]:
    """(account id, email id) -> the email's facts, for the keys that exist."""
    if not keys:
        return {}
    rows = await pool.fetch(
        """SELECT e.id, e.account_id, e.state, e.single_send_api, e.current_version, v.subscription_type,
                  v.from_email, e.automation
           FROM unnest($1::bigint[], $2::bigint[]) AS q(account_id, email_id)
           JOIN emails e ON e.account_id = q.account_id AND e.id = q.email_id
           JOIN email_versions v ON v.email_id = e.id AND v.version = e.current_version""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["account_id"], r["id"]): EmailFacts(**dict(r)) for r in rows}


async def recipient_facts(pool: asyncpg.Pool, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], RecipientFacts]:
    """(account id, lower-cased address) -> the contact's statuses and the tracker's suppressions."""
    if not keys:
        return {}
    rows = await pool.fetch(
        """SELECT q.account_id, q.address, c.subscription_status, c.quarantined, c.double_opt_in, c.bounced,
                  c.spam_reported,
                  ARRAY(SELECT s.reason FROM suppression_reasons s
                        WHERE s.account_id = q.account_id AND s.address = q.address) AS reasons
           FROM unnest($1::bigint[], $2::text[]) AS q(account_id, address)
           LEFT JOIN contacts c ON c.account_id = q.account_id AND c.email = q.address""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    found = {}
    for r in rows:
        statuses = {k: r[k] for k in STATUS_COLUMNS if r[k] is not None}
        found[(r["account_id"], r["address"])] = RecipientFacts(**statuses, suppressions=frozenset(r["reasons"]))
    return found


async def verified_domains(pool: asyncpg.Pool, account_ids: Sequence[int]) -> dict[int, frozenset[str]]:
    rows = await pool.fetch(
        """SELECT account_id, array_agg(domain) AS domains FROM sending_domains
           WHERE account_id = ANY($1::bigint[]) AND verified_at IS NOT NULL GROUP BY account_id""",
        list(account_ids),
    )
    found = {r["account_id"]: frozenset(r["domains"]) for r in rows}
    return {a: found.get(a, frozenset()) for a in account_ids}


@dataclass(frozen=True, slots=True)
class RequestRow:
    status_id: str
    message_id: str
    account_id: int
    send_id: str | None
    email_id: int | None
    recipient: str
    requested_at: datetime
    send_result: str | None = None  # set when the gateway itself ends the send
    send_at: datetime | None = None
    trigger_id: str | None = None  # the automation trigger rule that made the send


INSERT_REQUESTS = """
INSERT INTO send_requests (status_id, message_id, account_id, send_id, email_id, recipient, requested_at,
                           send_result, completed_at, send_at, trigger_id)
SELECT u.status_id, u.message_id, u.account_id, u.send_id, u.email_id, u.recipient, u.requested_at, u.send_result,
       CASE WHEN u.send_result IS NULL THEN NULL ELSE u.requested_at END, u.send_at, u.trigger_id
FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::timestamptz[],
            $8::text[], $9::timestamptz[], $10::uuid[])
     AS u(status_id, message_id, account_id, send_id, email_id, recipient, requested_at, send_result, send_at,
          trigger_id)
ON CONFLICT DO NOTHING  -- a repeated sendId (its ids are derived from it: the primary key too)
RETURNING status_id
"""


async def insert_requests(conn: asyncpg.Connection, rows: Sequence[RequestRow]) -> set[uuid.UUID]:
    """Inserts the rows in one statement; returns the status ids inserted (a repeated sendId's row
    is not: the caller answers with the first send's status). A concurrent duplicate waits on the
    unique index until the first transaction ends: exactly one of them inserts."""
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda r: r.status_id)  # one lock order for concurrent batches
    inserted = await conn.fetch(
        INSERT_REQUESTS,
        [r.status_id for r in ordered],
        [r.message_id for r in ordered],
        [r.account_id for r in ordered],
        [r.send_id for r in ordered],
        [r.email_id for r in ordered],
        [r.recipient for r in ordered],
        [r.requested_at for r in ordered],
        [r.send_result for r in ordered],
        [r.send_at for r in ordered],
        [r.trigger_id for r in ordered],
    )
    return {r["status_id"] for r in inserted}


UPSERT_CONTACTS = """
INSERT INTO contacts (account_id, email, properties)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::jsonb[])
ON CONFLICT (account_id, email) DO UPDATE SET
    properties = contacts.properties || EXCLUDED.properties, updated_at = now()
    WHERE EXCLUDED.properties <> '{}'::jsonb
"""


async def merge_contacts(conn: asyncpg.Connection, contacts: dict[tuple[int, str], dict[str, str]]) -> None:
    """Creates the contacts that do not exist and merges the given properties into them (an empty
    dict only creates): one statement, one row per (account, lower-cased address)."""
    if not contacts:
        return
    keys = sorted(contacts)
    await conn.execute(
        UPSERT_CONTACTS,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [json.dumps(contacts[k]) for k in keys],
    )


ScheduledRow = tuple[str, int, datetime, bytes, str | None]  # status id, account id, send at, record, batch id

INSERT_SCHEDULED = """
WITH b AS (  -- the sends' SendGrid batches, locked against a status change until this commits
    SELECT account_id, batch_id, status FROM sendgrid_batches
    WHERE (account_id, batch_id) IN (SELECT * FROM unnest($2::bigint[], $5::text[]))
    FOR SHARE
)
INSERT INTO scheduled_sends (status_id, account_id, send_at, payload, batch_id, paused)
SELECT u.status_id, u.account_id, u.send_at, u.payload, u.batch_id, coalesce(b.status = 'pause', false)
FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::bytea[], $5::text[])
     AS u(status_id, account_id, send_at, payload, batch_id)
LEFT JOIN b ON b.account_id = u.account_id AND b.batch_id = u.batch_id
"""


async def insert_scheduled(conn: asyncpg.Connection, rows: Sequence[ScheduledRow]) -> None:
    """(status id, account id, send at, encoded SendRequested, SendGrid batch id) of sends accepted
    for later, in one statement; a send of a paused batch is stored paused."""
    if rows:
        await conn.execute(INSERT_SCHEDULED, *(list(column) for column in zip(*rows, strict=True)))


async def first_sends(
    conn: asyncpg.Pool | asyncpg.Connection, keys: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], str]:
    """(account id, sendId) -> the status id of the send first accepted with that sendId."""
    rows = await conn.fetch(
        """SELECT r.account_id, r.send_id, r.status_id::text AS status_id
           FROM unnest($1::bigint[], $2::text[]) AS q(account_id, send_id)
           JOIN send_requests r ON r.account_id = q.account_id AND r.send_id = q.send_id""",
        [k[0] for k in keys],
        [k[1] for k in keys],
    )
    return {(r["account_id"], r["send_id"]): r["status_id"] for r in rows}


class PgAcceptWrite:
    """The writes of one accepted batch, in one PostgreSQL transaction (handlers.AcceptWrite)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def insert_requests(self, rows: Sequence[RequestRow]) -> set[uuid.UUID]:
        return await insert_requests(self.conn, rows)

    async def merge_contacts(self, contacts: dict[tuple[int, str], dict[str, str]]) -> None:
        await merge_contacts(self.conn, contacts)

    async def insert_scheduled(self, rows: Sequence[ScheduledRow]) -> None:
        await insert_scheduled(self.conn, rows)


class PgAcceptStore:
    """The Acceptor's port on PostgreSQL (handlers.AcceptStore)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def email_facts(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], EmailFacts]:
        return await email_facts(self.pool, keys)

    async def recipient_facts(self, keys: Sequence[tuple[int, str]]) -> dict[tuple[int, str], RecipientFacts]:
        return await recipient_facts(self.pool, keys)

    async def verified_domains(self, account_ids: Sequence[int]) -> dict[int, frozenset[str]]:
        return await verified_domains(self.pool, account_ids)

    async def first_send_status(self, account_id: int, send_id: str) -> dict[str, Any] | None:
        first = (await first_sends(self.pool, [(account_id, send_id)])).get((account_id, send_id))
        return await sends.send_status(self.pool, account_id, first) if first else None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgAcceptWrite]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield PgAcceptWrite(conn)
