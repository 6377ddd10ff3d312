"""Faust agents: send statuses, suppressions and statistics from the tracker's topics.

email.rendered -> PROCESSING, tracked message, `sent`; email.delivery -> COMPLETE, hard-bounce
suppression, delivered/bounced/dropped; email.engagement -> opens/clicks/spam reports;
email.unsubscribe -> suppression, unsubscribes. Counters travel on the internal increments topic,
keyed by statistics key, to the one agent that owns the counter's table partition.
"""

from __future__ import annotations

from mailstream.core.faust_runtime import dead_letter_value
from mailstream.schemas import (
    DecodeError,
    DeliveryAttempted,
    EmailRendered,
    EngagementRecorded,
    UnsubscribeRecorded,
    decode,
)
from mailstream.tracker import batches, bootstrap, handlers, tables, topics
from mailstream.tracker.app import app
from mailstream.tracker.stats import fold

# Database-bound agents run this many actors: their writes are idempotent and order-independent
# (a COMPLETE status never moves back, suppressions and tracked messages are insert-once).
DB_CONCURRENCY = 4
# email.rendered and email.delivery: up to BATCH_ACTORS events in flight, each actor's event
# written with those the others took within BATCH_WITHIN seconds (one statement per table).
BATCH_ACTORS = 64
BATCH_WITHIN = 0.05


async def decoded(event, record_type):
    try:
        return decode(event.value, record_type)
    except DecodeError as exc:
        await dead_letter(event, str(exc))
        return None


async def dead_letter(event, reason: str) -> None:
    value = dead_letter_value(event, service="tracker", reason=reason)
    await topics.dead_letter.send(key=event.key, value=value)


def group_writer(record_type, write_batch) -> batches.GroupWriter:
    async def write(records):
        return await write_batch(records, pool=(await bootstrap.deps()).pool)

    return batches.GroupWriter(record_type, write, dead_letter, tables.pending_increments.add, within=BATCH_WITHIN)


rendered_writer = group_writer(EmailRendered, handlers.on_rendered_batch)
delivery_writer = group_writer(DeliveryAttempted, handlers.on_delivery_batch)


@app.agent(topics.rendered, concurrency=BATCH_ACTORS)
async def mark_processing(stream):
    # Faust acknowledges an event when its actor asks for the next one: once it is written.
    async for event in stream.events():
        await rendered_writer.write(event)


@app.agent(topics.delivery, concurrency=BATCH_ACTORS)
async def mark_outcome(stream):
    async for event in stream.events():
        await delivery_writer.write(event)


@app.agent(topics.engagement)
async def count_engagement(stream):
    async for event in stream.events():
        if (evt := await decoded(event, EngagementRecorded)) is not None:
            tables.pending_increments.add(handlers.on_engagement(evt, tables.first_human))


@app.timer(interval=0.1)
async def forward_increments():
    """One summed increment per counter row and tick, to the agent that owns the row."""
    for key, delta in tables.pending_increments.drain():
        await topics.stats_increments.send(key=key.encode(), value=delta)


@app.agent(topics.unsubscribe, concurrency=DB_CONCURRENCY)
async def record_unsubscribe(stream):
    async for event in stream.events():
        if (evt := await decoded(event, UnsubscribeRecorded)) is not None:
            tables.pending_increments.add(await handlers.on_unsubscribe(evt, await bootstrap.deps()))


@app.agent(topics.stats_increments)
async def count(stream):
    async for event in stream.events():
        tables.counts[event.key] = fold(tables.counts[event.key], event.value)
        tables.dirty[event.key] = event.message.partition


@app.timer(interval=1.0)
async def materialize_stats():
    name = topics.stats_increments.get_topic_name()
    owned = {tp.partition for tp in app.assignor.assigned_actives() if tp.topic == name}
    await handlers.flush_stats(tables.counts, tables.dirty, owned, await bootstrap.deps())
