"""The tracker's tracked_messages table: message id -> account, recipients, email, SMTP token, trigger rule,
custom_args and categories."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime

import asyncpg
from cachetools import LRUCache
from prometheus_client import Counter

from mailstream.tracker.adapters.outcomes import status_of_message
from mailstream.tracker.adapters.suppressions import already_reported
from mailstream.tracker.engagement import Annotation, TrackedMessage

log = logging.getLogger(__name__)
LOOKUPS = Counter(
    "mailstream_tracker_annotation_lookups_total",
    "Look-ups of an annotated link's custom_args and categories, by outcome (cached, found, missing, error)",
    ["outcome"],
)

REMEMBER_ALL = """INSERT INTO tracked_messages
               (message_id, account_id, recipients, email_id, smtp_token_id, rendered_at, trigger_id, custom_args,
                categories)
           SELECT u.message_id, u.account_id, ARRAY(SELECT jsonb_array_elements_text(u.recipients::jsonb)),
               u.email_id, u.smtp_token_id, u.rendered_at, u.trigger_id, u.custom_args::jsonb,
               CASE WHEN u.categories IS NOT NULL
                   THEN ARRAY(SELECT jsonb_array_elements_text(u.categories::jsonb)) END
           FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], $7::text[],
                       $8::text[], $9::text[])
               AS u(message_id, account_id, recipients, email_id, smtp_token_id, rendered_at, trigger_id, custom_args,
                    categories)
           ON CONFLICT (message_id) DO NOTHING RETURNING message_id"""


async def remember_all(conn: asyncpg.Connection, rendered: list[tuple[TrackedMessage, datetime]]) -> set[uuid.UUID]:
    """Stores rendered messages in one statement; returns the ids stored for the first time (a redelivered
    record, or a repeat within the list, is not). A malformed id raises ValueError before anything is written."""
    if not rendered:
        return set()
    ordered = sorted(((uuid.UUID(m.message_id), m, at) for m, at in rendered), key=lambda r: r[0])
    rows = await conn.fetch(
        REMEMBER_ALL,
        [key for key, _, _ in ordered],
        [m.account_id for _, m, _ in ordered],
        [json.dumps(list(m.recipients)) for _, m, _ in ordered],
        [m.email_id for _, m, _ in ordered],
        [m.smtp_token_id for _, m, _ in ordered],
        [at for _, _, at in ordered],
        [m.trigger_id for _, m, _ in ordered],
        [json.dumps(m.custom_args) if m.custom_args else None for _, m, _ in ordered],
        [json.dumps(list(m.categories)) if m.categories else None for _, m, _ in ordered],  # as JSON: unnest flattens
    )
    return {row[0] for row in rows}


def _args(value: str | None) -> dict[str, str]:
    return json.loads(value) if value else {}


def _categories(value: list[str] | None) -> tuple[str, ...]:
    return tuple(value) if value else ()


async def find(pool: asyncpg.Pool, message_id: str) -> TrackedMessage | None:
    try:
        key = uuid.UUID(message_id)
    except ValueError:
        return None
    row = await pool.fetchrow(
        """SELECT account_id, recipients, email_id, smtp_token_id, trigger_id, custom_args, categories
           FROM tracked_messages WHERE message_id = $1""",
        key,
    )
    if row is None:
        return None
    return TrackedMessage(
        message_id=str(key),
        account_id=row["account_id"],
        recipients=tuple(row["recipients"]),
        email_id=row["email_id"],
        smtp_token_id=row["smtp_token_id"],
        trigger_id=row["trigger_id"],
        custom_args=_args(row["custom_args"]),
        categories=_categories(row["categories"]),
    )


async def find_all(conn: asyncpg.Connection, message_ids: set[uuid.UUID]) -> dict[uuid.UUID, TrackedMessage]:
    """The tracked messages among the ids, in one statement (none when there are no ids)."""
    if not message_ids:
        return {}
    rows = await conn.fetch(
        """SELECT message_id, account_id, recipients, email_id, smtp_token_id, trigger_id, custom_args, categories
           FROM tracked_messages WHERE message_id = ANY($1::uuid[])""",
        list(message_ids),
    )
    return {
        r["message_id"]: TrackedMessage(
            str(r["message_id"]),
            r["account_id"],
            tuple(r["recipients"]),
            r["email_id"],
            r["smtp_token_id"],
            r["trigger_id"],
            _args(r["custom_args"]),
            _categories(r["categories"]),
        )
        for r in rows
    }


async def annotation_of(pool: asyncpg.Pool, message_id: str) -> Annotation | None:
    """The message's custom_args and categories; None when the tracker does not have the message."""
    try:
        key = uuid.UUID(message_id)
    except ValueError:
        return None
    row = await pool.fetchrow("SELECT custom_args, categories FROM tracked_messages WHERE message_id = $1", key)
    if row is None:
        return None
    return Annotation(_args(row["custom_args"]), _categories(row["categories"]))


class MessageAnnotations:
    """The opens' and clicks' port onto the custom_args and categories of annotated links' messages,
    cached (a tracked message's row never changes once written). A message not found is not cached:
    its row comes when the tracker consumes its email.rendered.meta record, maybe a moment later."""

    def __init__(self, pool: asyncpg.Pool, capacity: int = 16384) -> None:
        self._pool = pool
        self._cache: LRUCache[str, Annotation] = LRUCache(maxsize=capacity)
        self._counted = {outcome: LOOKUPS.labels(outcome) for outcome in ("cached", "found", "missing", "error")}

    async def of(self, message_id: str) -> Annotation | None:
        """None when the message is not found, or the database does not answer (logged): the caller
        publishes the event without them rather than failing a pixel or a redirect."""
        if (found := self._cache.get(message_id)) is not None:
            self._counted["cached"].inc()
            return found
        try:
            found = await annotation_of(self._pool, message_id)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
            self._counted["error"].inc()
            log.warning("custom_args and categories of message %s not looked up: %s", message_id, exc)
            return None
        if found is None:
            self._counted["missing"].inc()
            return None
        self._counted["found"].inc()
        self._cache[message_id] = found
        return found


class MessageLookups:
    """The feedback and late-bounce handlers' port onto tracked messages, their send statuses and
    earlier spam reports."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def find(self, message_id: str) -> TrackedMessage | None:
        return await find(self._pool, message_id)

    async def already_reported(self, account_id: int, address: str, message_id: str) -> bool:
        return await already_reported(self._pool, account_id, address, message_id)

    async def status_id(self, message_id: str) -> str | None:
        return await status_of_message(self._pool, message_id)
