"""One fetched batch of email.send.requested through the renderer: decode, gather the batch's
facts, render each request, publish every outcome, and only then let its offsets be committed.

Records that cannot be decoded or processed go to the dead-letter topic with the reason (and,
when the send is known, it ends with the matching sendResult); the batch goes on. A database
or broker outage fails the whole batch, which the loop retries (core.consumer): mail is never
dropped because a dependency blinked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Histogram

from mailstream.core.consumer import Batches, next_offsets
from mailstream.core.logs import log_send
from mailstream.renderer.adapters.publisher import Published
from mailstream.renderer.handlers import Unprocessable, dropped, gather_facts, render_one
from mailstream.renderer.ports import Ports
from mailstream.schemas import (
    DecodeError,
    DeliveryAttempted,
    EmailRendered,
    SendRequested,
    SendResult,
    dead_lettered,
    decode,
)

log = logging.getLogger(__name__)

RENDERED = Counter("mailstream_renderer_records_total", "Send requests handled", ["outcome"])
BATCH_SECONDS = Histogram(
    "mailstream_renderer_batch_seconds",
    "Time to turn one batch of send requests into published outcomes",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "mailstream_renderer_batch_records", "Send requests per batch", buckets=(1, 10, 50, 100, 250, 500)
)

Publish = Callable[[Iterable[Published], dict[str, SendRequested]], Awaitable[None]]


def dead_letter(record: ConsumerRecord, reason: str):
    RENDERED.labels("dead_lettered").inc()
    return dead_lettered(
        service="renderer",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        reason=reason,
    )


def decoded(records: Iterable[ConsumerRecord]) -> tuple[list[tuple[ConsumerRecord, SendRequested]], list[Published]]:
    requests, dead = [], []
    for record in records:
        try:
            requests.append((record, decode(record.value, SendRequested)))
        except DecodeError as exc:
            dead.append(dead_letter(record, f"cannot decode SendRequested: {exc}"))
    return requests, dead


def outcome_of(record: ConsumerRecord, req: SendRequested, facts, ports: Ports) -> list[Published]:
    try:
        return [render_one(req, facts, ports)]
    except Unprocessable as exc:
        return [dead_letter(record, exc.reason), dropped(req, exc.result, exc.reason, now=ports.clock())]
    except Exception as exc:  # a bug or an input we did not foresee: this send ends, the batch goes on
        log.exception("cannot render message %s", req.message_id)
        reason = f"renderer error: {type(exc).__name__}: {exc}"
        return [dead_letter(record, reason), dropped(req, SendResult.CORRUPT_INPUT, reason, now=ports.clock())]


async def render_batch(batches: Batches, *, ports: Ports, publish: Publish):
    started = time.perf_counter()
    records = [r for partition in batches.values() for r in partition]
    requests, published = decoded(records)
    facts = await gather_facts([req for _, req in requests], ports)  # transient errors: the batch is retried
    for record, req in requests:
        published += outcome_of(record, req, facts, ports)
    origins = {req.message_id: req for _, req in requests if req.trigger_id or req.one_off_send_id}
    await publish(published, origins)
    for event in published:  # Kafka has them
        if isinstance(event, EmailRendered):
            RENDERED.labels("rendered").inc()
            log_send("rendered", status_id=event.status_id, message_id=event.message_id, sending_ip=event.sending_ip)
        elif isinstance(event, DeliveryAttempted):
            RENDERED.labels(event.send_result).inc()
            log_send("dropped", status_id=event.status_id, message_id=event.message_id, send_result=event.send_result)
    BATCH_SIZE.observe(len(records))
    BATCH_SECONDS.observe(time.perf_counter() - started)
    return next_offsets(batches)
