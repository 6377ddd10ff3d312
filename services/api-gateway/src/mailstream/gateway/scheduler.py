"""Releases scheduled sends when they are due.

Each pass, in one transaction: lock the due rows (FOR UPDATE SKIP LOCKED, so a second replica
takes other rows or none), publish them and wait for Kafka's acknowledgement, mark them
released. If the publish fails the transaction rolls back and the rows are tried again; a
crash between Kafka's ack and the commit re-publishes the same message_id, which the sender's
de-duplication drops. A released or canceled row is never selected again.

SendGrid batches (docs/sendgrid.md#batches) are decided in the same transaction: a due send of a
canceled batch is canceled instead of released; a paused batch's sends are not due, and those
72 h past their send_at are canceled (SendGrid's Expired). Either way a send is canceled or
released, never both: both writes need the row lock that lock_due takes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka.errors import KafkaError
from prometheus_client import Counter

from mailstream.core.db import DATABASE_DOWN
from mailstream.gateway.adapters import sends
from mailstream.gateway.kafka_link import KafkaUnavailable
from mailstream.schemas.topics import SEND_REQUESTED

log = logging.getLogger("mailstream.gateway.scheduler")
RELEASED = Counter("mailstream_gateway_scheduled_released_total", "Scheduled sends released to Kafka")
DISCARDED = Counter(
    "mailstream_gateway_scheduled_discarded_total",
    "Scheduled sends of a SendGrid batch canceled when due (canceled batch) or expired (paused 72 h)",
    ["reason"],
)
SendMany = Callable[[str, list[tuple[bytes, bytes]]], Awaitable[None]]


async def release_due(pool: asyncpg.Pool, send_many: SendMany, *, batch: int = 500) -> int:
    """Publish the due scheduled sends this replica could lock (cancel those of a canceled batch,
    and the expired ones of a paused batch); returns how many sends it ended either way."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await sends.lock_due(conn, batch)
        expired = await sends.lock_expired(conn, batch)
        if not rows and not expired:
            return 0
        due = [r for r in rows if not r["discard"]]
        discarded = [r["status_id"] for r in rows if r["discard"]]
        if due:
            await send_many(SEND_REQUESTED.name, [(r["recipient"].lower().encode(), r["payload"]) for r in due])
            await sends.mark_released(conn, [r["status_id"] for r in due])
        await sends.cancel_many(conn, discarded + expired)
    RELEASED.inc(len(due))
    DISCARDED.labels("canceled").inc(len(discarded))
    DISCARDED.labels("expired").inc(len(expired))
    return len(rows) + len(expired)


async def run_scheduler(pool: asyncpg.Pool, send_many: SendMany, stop: asyncio.Event, *, interval_s: float) -> None:
    """Poll every interval_s (or sooner when a send falls due) until stop is set."""
    while not stop.is_set():
        wait = interval_s
        try:
            released = await release_due(pool, send_many)
            if released:
                log.info("released scheduled sends", extra={"fields": {"count": released}})
                continue
            due_in = await sends.next_due_in(pool)
            if due_in is not None and due_in > 0:  # overdue but not taken: another replica has it
                wait = min(interval_s, due_in)
        except (*DATABASE_DOWN, KafkaError, KafkaUnavailable) as exc:
            log.warning("scheduler pass failed, retrying", extra={"fields": {"error": repr(exc)}})
            wait = max(interval_s, 1.0)
        except Exception:  # never let the releaser die: log, back off, go on
            log.exception("scheduler pass crashed, retrying")
            wait = max(interval_s, 1.0)
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except TimeoutError:
            pass
