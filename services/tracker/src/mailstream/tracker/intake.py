"""One fetched batch of the tracker's topics, written in one PostgreSQL transaction together with
the offsets it consumed (adapters/offsets.py): exactly once, whatever crashes when.

    email.rendered.meta -> PROCESSING, tracked message (with its trigger rule), `sent`
    email.delivery      -> COMPLETE, hard-bounce suppression, delivered / bounced / dropped;
                           a late bounce (DSN) of a delivered send: bounced, delivered -> bounced
    email.engagement    -> opens, clicks (unique human ones once), spam reports
    email.unsubscribe   -> suppression, unsubscribes
    email.suppression.changes -> a suppression lifted (unbounce) or added on request, its history
    (each of them also an email event: events.py)

Records that cannot be decoded, or whose ids are not UUIDs, are dead-lettered with the reason.
While PostgreSQL is down the batch is retried (core.consumer); a record PostgreSQL refuses is
found by writing the batch's records one at a time, and dead-lettered while the others are written.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Histogram

from mailstream.core.consumer import Batches
from mailstream.schemas import (
    DecodeError,
    DeliveryAttempted,
    EngagementRecorded,
    MessageRendered,
    RecordDeadLettered,
    SuppressionChanged,
    UnsubscribeRecorded,
    dead_lettered,
    decode,
)
from mailstream.schemas.topics import DELIVERY, ENGAGEMENT, RENDERED_META, SUPPRESSION_CHANGES, UNSUBSCRIBE
from mailstream.tracker import figures, handlers
from mailstream.tracker.adapters import email_events, engagements, messages, offsets, outcomes, stats, suppressions
from mailstream.tracker.events import on_suppression_change
from mailstream.tracker.stats import summed

log = logging.getLogger(__name__)

RECORD_TYPES = {
    RENDERED_META.name: MessageRendered,
    DELIVERY.name: DeliveryAttempted,
    ENGAGEMENT.name: EngagementRecorded,
    UNSUBSCRIBE.name: UnsubscribeRecorded,
    SUPPRESSION_CHANGES.name: SuppressionChanged,
}
TOPICS = tuple(RECORD_TYPES)
# Errors that belong to a record, not to the database's availability: retrying cannot help.
BAD_RECORD = (ValueError, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)

HANDLED = Counter("mailstream_tracker_records_total", "Records written", ["topic"])
DEAD = Counter("mailstream_tracker_dead_letters_total", "Records dead-lettered", ["topic"])
BATCH_SECONDS = Histogram(
    "mailstream_tracker_batch_seconds",
    "Time to write one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

PublishDeadLetters = Callable[[list[RecordDeadLettered]], Awaitable[None]]
Seek = Callable[[TopicPartition, int], None]


def _ids_of(evt) -> tuple[str, ...]:
    ids = [evt.message_id] if getattr(evt, "message_id", None) else []
    if isinstance(evt, MessageRendered | DeliveryAttempted):
        ids.append(evt.status_id)
    return tuple(ids)


def read(record: ConsumerRecord):
    """The record's event, or the reason it cannot be one (its ids must be UUIDs)."""
    try:
        evt = decode(record.value, RECORD_TYPES[record.topic])
        for value in _ids_of(evt):
            uuid.UUID(value)
    except (DecodeError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    return evt, None


def dead_letter(record: ConsumerRecord, reason: str) -> RecordDeadLettered:
    DEAD.labels(record.topic).inc()
    return dead_lettered(
        service="tracker",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        reason=reason,
    )


async def write(conn: asyncpg.Connection, events: list, positions: list[offsets.Position]) -> int:
    """Applies the events and moves the offsets in the caller's transaction; returns the number of
    statistics rows changed."""
    plan = handlers.plan_batch(events)
    written = handlers.Written()
    written.changed_statuses = await outcomes.apply_statuses(conn, plan.statuses)
    written.late_bounced = await outcomes.apply_late_bounces(conn, plan.late_bounces)
    written.new_messages = await messages.remember_all(conn, plan.tracked)
    await suppressions.suppress_all(conn, plan.suppressions)
    changed = await suppressions.apply_changes(conn, plan.suppression_changes)
    lifted = [on_suppression_change(c, r) for c, r in zip(plan.suppression_changes, changed, strict=True)]
    await email_events.record_all(conn, plan.events + [e for e in lifted if e is not None])
    written.new_firsts = await engagements.remember_firsts(conn, plan.first_candidates)
    written.messages = await messages.find_all(conn, handlers.to_look_up(plan, written))  # one query, or none
    rows = await stats.add(conn, summed(handlers.increments(plan, written)))
    await offsets.advance(conn, positions)
    return rows


@dataclass
class TrackerIntake:
    pool: asyncpg.Pool
    publish_dead_letters: PublishDeadLetters
    seek: Seek

    async def on_assigned(self, tps: set[TopicPartition]) -> None:
        """Read each partition from where the tracker's own transactions left it."""
        for tp, offset in (await offsets.stored(self.pool, tps)).items():
            self.seek(tp, offset)

    async def __call__(self, batches: Batches) -> dict[TopicPartition, int]:
        started = time.perf_counter()
        events, dead = [], []
        for records in batches.values():
            for record in records:
                evt, reason = read(record)
                if evt is None:
                    dead.append(dead_letter(record, reason))
                else:
                    events.append((record, evt))
        if dead:
            await self.publish_dead_letters(dead)  # before the offsets move past them
        positions = [offsets.Position(tp, rs[0].offset, rs[-1].offset + 1) for tp, rs in batches.items()]
        try:
            await self._write([e for _, e in events], positions)
        except offsets.AlreadyWritten as exc:
            return await self._skip_written(exc.tps, positions)
        except BAD_RECORD as exc:
            log.warning("a batch was refused (%r); writing its records one at a time", exc)
            await self._one_at_a_time(events, batches)
        else:
            figures.recorded(e for _, e in events)
        for records in batches.values():
            HANDLED.labels(records[0].topic).inc(len(records))
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return {p.tp: p.next_offset for p in positions}

    async def _write(self, events: list, positions: list[offsets.Position]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await write(conn, events, positions)

    async def _one_at_a_time(self, events: list[tuple[ConsumerRecord, object]], batches: Batches) -> None:
        by_offset = {(r.topic, r.partition, r.offset): evt for r, evt in events}
        for tp, records in batches.items():
            for record in records:
                evt = by_offset.get((record.topic, record.partition, record.offset))
                position = [offsets.Position(tp, record.offset, record.offset + 1)]
                try:
                    await self._write([evt] if evt is not None else [], position)
                except offsets.AlreadyWritten:
                    continue  # written before (a retried batch)
                except BAD_RECORD as exc:
                    await self.publish_dead_letters([dead_letter(record, f"not written: {type(exc).__name__}: {exc}")])
                    await self._write([], position)
                else:
                    figures.recorded([evt] if evt is not None else [])

    async def _skip_written(self, tps: list[TopicPartition], positions: list[offsets.Position]):
        """Some partitions were written past this batch: nothing of it was written. Those partitions
        are read again from where they stand, the others from the batch's first record."""
        log.warning("batch already written for %s: seeking to the stored offsets", tps)
        stored = await offsets.stored(self.pool, set(tps))
        for p in positions:
            self.seek(p.tp, stored.get(p.tp, p.first))
        return {}
