"""The tracker's email_events table (the gateway reads it through the email_event_log view)."""

from __future__ import annotations

import json
import uuid

import asyncpg

from mailstream.tracker.events import EmailEvent

RECORD_ALL = """INSERT INTO email_events (id, account_id, type, created, recipient, message_id, email_id,
                                          smtp_token_id, detail)
           SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::uuid[],
                                $7::bigint[], $8::text[], $9::jsonb[])
           ON CONFLICT (id) DO NOTHING"""


async def record_all(conn: asyncpg.Connection, events: list[EmailEvent]) -> None:
    """Records events in one statement; an event already recorded (same id) is kept as it was."""
    if not events:
        return
    ordered = sorted({e.id: e for e in events}.values(), key=lambda e: e.id)
    await conn.execute(
        RECORD_ALL,
        [e.id for e in ordered],
        [e.account_id for e in ordered],
        [e.type for e in ordered],
        [e.created for e in ordered],
        [e.recipient for e in ordered],
        [uuid.UUID(e.message_id) if e.message_id else None for e in ordered],
        [e.email_id for e in ordered],
        [e.smtp_token_id for e in ordered],
        [json.dumps(e.detail) for e in ordered],
    )
