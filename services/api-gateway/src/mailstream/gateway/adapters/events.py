"""The tracker's email_event_log view (read only), with the gateway's smtp_tokens for each
event's emailCampaignId. Scoped by account_id."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

SELECT = """SELECT e.id, e.type, e.created, e.recipient, e.message_id::text AS message_id, e.email_id,
          e.smtp_token_id, e.detail, t.email_campaign_id
   FROM email_event_log e
   LEFT JOIN smtp_tokens t ON t.account_id = e.account_id AND t.id = e.smtp_token_id"""


@dataclass(frozen=True, slots=True)
class EventFilter:
    recipient: str | None = None
    campaign_id: int | None = None  # an SMTP token's emailCampaignId
    email_id: int | None = None
    event_type: str | None = None
    start: datetime | None = None  # inclusive
    end: datetime | None = None  # exclusive


async def list_events(
    pool: asyncpg.Pool,
    account_id: int,
    where: EventFilter,
    *,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[dict[str, Any]]:
    """Newest first, after the cursor (the last listed event's created and id); one more than
    `limit` when there is a next page."""
    rows = await pool.fetch(
        f"""{SELECT}
            WHERE e.account_id = $1
              AND ($2::text IS NULL OR e.recipient = $2)
              AND ($3::bigint IS NULL OR t.email_campaign_id = $3)
              AND ($4::bigint IS NULL OR e.email_id = $4)
              AND ($5::text IS NULL OR e.type = $5)
              AND ($6::timestamptz IS NULL OR e.created >= $6)
              AND ($7::timestamptz IS NULL OR e.created < $7)
              AND ($8::timestamptz IS NULL OR (e.created, e.id) < ($8, $9::uuid))
            ORDER BY e.created DESC, e.id DESC
            LIMIT $10""",
        account_id,
        where.recipient.lower() if where.recipient else None,
        where.campaign_id,
        where.email_id,
        where.event_type,
        where.start,
        where.end,
        before[0] if before else None,
        before[1] if before else None,
        limit + 1,
    )
    return [_decoded(r) for r in rows]


async def get_event(pool: asyncpg.Pool, account_id: int, event_id: uuid.UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(f"{SELECT} WHERE e.account_id = $1 AND e.id = $2", account_id, event_id)
    return _decoded(row) if row else None


def _decoded(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("detail"), str):
        out["detail"] = json.loads(out["detail"])
    return out


async def daily_counts(
    pool: asyncpg.Pool, account_id: int, campaign_id: int, start: datetime, types: tuple[str, ...]
) -> list[dict[str, Any]]:
    """The events of an SMTP token's emailCampaignId since `start`, counted per UTC day and type
    (rows: day, type, n): the console's chart of sends, opens and clicks."""
    rows = await pool.fetch(
        """SELECT (e.created AT TIME ZONE 'UTC')::date AS day, e.type, count(*) AS n
           FROM email_event_log e
           JOIN smtp_tokens t ON t.account_id = e.account_id AND t.id = e.smtp_token_id
           WHERE e.account_id = $1 AND t.email_campaign_id = $2 AND e.created >= $3 AND e.type = ANY($4::text[])
           GROUP BY 1, 2""",
        account_id,
        campaign_id,
        start,
        list(types),
    )
    return [dict(r) for r in rows]
