"""The tracker's send_outcomes table."""

from __future__ import annotations

import uuid

import asyncpg

from mailstream.schemas import DeliveryAttempted
from mailstream.tracker.statuses import StatusChange

_UPSERT_SET = """
           ON CONFLICT (status_id) DO UPDATE SET
               status = EXCLUDED.status,
               send_result = COALESCE(EXCLUDED.send_result, send_outcomes.send_result),
               started_at = COALESCE(send_outcomes.started_at, EXCLUDED.started_at),
               completed_at = COALESCE(EXCLUDED.completed_at, send_outcomes.completed_at),
               event_id = COALESCE(send_outcomes.event_id, EXCLUDED.event_id),
               event_created = COALESCE(send_outcomes.event_created, EXCLUDED.event_created),
               bounce_class = EXCLUDED.bounce_class,
               updated_at = now()
           WHERE send_outcomes.status <> 'COMPLETE'"""

APPLY_ALL = f"""INSERT INTO send_outcomes (status_id, message_id, account_id, status, send_result, started_at,
               completed_at, event_id, event_created, bounce_class)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[],
               $7::timestamptz[], $8::uuid[], $9::timestamptz[], $10::text[]){_UPSERT_SET}
           RETURNING status_id"""

# A late bounce turns a delivered send bounced, once: only a COMPLETE status that still says SENT.
LATE_BOUNCES = """UPDATE send_outcomes
           SET send_result = u.send_result, bounce_class = u.bounce_class, updated_at = now()
           FROM unnest($1::uuid[], $2::text[], $3::text[]) AS u(status_id, send_result, bounce_class)
           WHERE send_outcomes.status_id = u.status_id AND send_outcomes.status = 'COMPLETE'
               AND send_outcomes.send_result = 'SENT'
           RETURNING send_outcomes.status_id"""


async def apply_statuses(conn: asyncpg.Connection, changes: list[StatusChange]) -> set[uuid.UUID]:
    """Applies status changes of distinct status ids in one statement; returns the status ids whose row
    changed (a repeated COMPLETE does not). A malformed id raises ValueError before anything is written."""
    if not changes:
        return set()
    ordered = sorted(changes, key=lambda c: uuid.UUID(c.status_id))  # one lock order: no deadlock between batches
    rows = await conn.fetch(
        APPLY_ALL,
        [uuid.UUID(c.status_id) for c in ordered],
        [uuid.UUID(c.message_id) for c in ordered],
        [c.account_id for c in ordered],
        [c.status for c in ordered],
        [c.send_result for c in ordered],
        [c.started_at for c in ordered],
        [c.completed_at for c in ordered],
        [uuid.UUID(c.event_id) if c.event_id else None for c in ordered],
        [c.event_created for c in ordered],
        [c.bounce_class for c in ordered],
    )
    return {row[0] for row in rows}


async def apply_late_bounces(conn: asyncpg.Connection, bounces: dict[uuid.UUID, DeliveryAttempted]) -> set[uuid.UUID]:
    """Delivered sends that bounced later: their status ends bounced with the late bounce's class.
    Returns the status ids changed (a send already bounced, or not yet complete, is not)."""
    if not bounces:
        return set()
    ordered = sorted(bounces)
    rows = await conn.fetch(
        LATE_BOUNCES,
        ordered,
        [bounces[s].send_result for s in ordered],
        [bounces[s].bounce_class for s in ordered],
    )
    return {row[0] for row in rows}


async def status_of_message(pool: asyncpg.Pool, message_id: str) -> str | None:
    """The send status id of a message (a DSN names the message; its delivery event names both)."""
    row = await pool.fetchrow(
        "SELECT status_id FROM send_outcomes WHERE message_id = $1 LIMIT 1", uuid.UUID(message_id)
    )
    return str(row[0]) if row else None
