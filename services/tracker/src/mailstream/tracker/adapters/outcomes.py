"""The tracker's send_outcomes table."""

from __future__ import annotations

import uuid

import asyncpg

from mailstream.tracker.statuses import StatusChange

_UPSERT_SET = """
           ON CONFLICT (status_id) DO UPDATE SET
               status = EXCLUDED.status,
               send_result = COALESCE(EXCLUDED.send_result, send_outcomes.send_result),
               started_at = COALESCE(send_outcomes.started_at, EXCLUDED.started_at),
               completed_at = COALESCE(EXCLUDED.completed_at, send_outcomes.completed_at),
               event_id = COALESCE(send_outcomes.event_id, EXCLUDED.event_id),
               event_created = COALESCE(send_outcomes.event_created, EXCLUDED.event_created),
               updated_at = now()
           WHERE send_outcomes.status <> 'COMPLETE'"""

APPLY_ALL = f"""INSERT INTO send_outcomes (status_id, message_id, account_id, status, send_result, started_at,
               completed_at, event_id, event_created)
           SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[],
               $7::timestamptz[], $8::uuid[], $9::timestamptz[]){_UPSERT_SET}
           RETURNING status_id"""


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
    )
    return {row[0] for row in rows}
