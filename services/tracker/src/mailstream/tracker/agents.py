"""Send statuses from email.rendered (PROCESSING) and email.delivery (COMPLETE)."""

from __future__ import annotations

from mailstream.schemas import DecodeError, DeliveryAttempted, EmailRendered, dead_lettered, decode, encode
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
    record = dead_lettered(
        service="tracker",
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        key=event.key,
        value=event.value,
        reason=reason,
    )
    await topics.dead_letter.send(key=event.key, value=encode(record))
