"""Releases scheduled sends when they are due.

Each pass, in one transaction: lock the due rows (FOR UPDATE SKIP LOCKED, so a second replica
takes other rows or none), publish them and wait for Kafka's acknowledgement, mark them
released. If the publish fails the transaction rolls back and the rows are tried again; a
crash between Kafka's ack and the commit re-publishes the same message_id, which the sender's
de-duplication drops. A released or canceled row is never selected again.
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
SendMany = Callable[[str, list[tuple[bytes, bytes]]], Awaitable[None]]


async def release_due(pool: asyncpg.Pool, send_many: SendMany, *, batch: int = 500) -> int:
    """Publish the due scheduled sends this replica could lock; returns how many."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await sends.lock_due(conn, batch)
        if not rows:
            return 0
        await send_many(SEND_REQUESTED.name, [(r["recipient"].lower().encode(), r["payload"]) for r in rows])
        await sends.mark_released(conn, [r["status_id"] for r in rows])
    RELEASED.inc(len(rows))
    return len(rows)


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
            if due_in is not None:
                wait = max(0.0, min(interval_s, due_in))
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
