"""Send statuses from email.rendered (PROCESSING) and email.delivery (COMPLETE)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from mailstream.schemas import DecodeError, DeliveryAttempted, EmailRendered, RecordDeadLettered, decode, encode
from mailstream.tracker import bootstrap, topics
from mailstream.tracker.adapters.outcomes import apply_status
from mailstream.tracker.app import app
from mailstream.tracker.statuses import on_delivery, on_rendered


@app.agent(topics.rendered)
async def mark_processing(stream):
    async for event in stream.events():
        try:
            msg = decode(event.value, EmailRendered)
        except DecodeError as exc:
            await dead_letter(event, str(exc))
            continue
        await apply_status((await bootstrap.deps()).pool, on_rendered(msg))


@app.agent(topics.delivery)
async def mark_outcome(stream):
    async for event in stream.events():
        try:
            evt = decode(event.value, DeliveryAttempted)
        except DecodeError as exc:
            await dead_letter(event, str(exc))
            continue
        if (change := on_delivery(evt)) is not None:
            await apply_status((await bootstrap.deps()).pool, change)


async def dead_letter(event, reason: str) -> None:
    msg = event.message
    record = RecordDeadLettered(
        event_id=str(uuid.uuid4()),
        service="tracker",
        source_topic=msg.topic,
        source_partition=msg.partition,
        source_offset=msg.offset,
        reason=reason,
        occurred_at=datetime.now(UTC),
        key=event.key,
        value=event.value,
    )
    await topics.dead_letter.send(key=event.key, value=encode(record))
