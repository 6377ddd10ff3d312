"""The consume loop: fetch per partition, finish every message, then commit its offset.

Offsets move only after each message's outcome is published and acknowledged (at least
once on Kafka); the delivery records make a re-consumed message a no-op at the SMTP side.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter

from mailstream.schemas import DecodeError, EmailRendered, dead_lettered, decode, encode
from mailstream.schemas.topics import DEAD_LETTER
from mailstream.sender.pipeline import Pipeline

log = logging.getLogger("mailstream.sender")
HANDLED = Counter("mailstream_sender_records_total", "Rendered records handled", ["result"])


async def consume(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, pipeline: Pipeline, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        batches = await consumer.getmany(timeout_ms=500, max_records=200)
        if not batches:
            continue
        done = await asyncio.gather(*(handle_partition(records, producer, pipeline) for records in batches.values()))
        await consumer.commit({tp: offset for tp, offset in done})


async def handle_partition(
    records: list[ConsumerRecord], producer: AIOKafkaProducer, pipeline: Pipeline
) -> tuple[TopicPartition, int]:
    # One partition's records in order: it carries one sending IP's traffic.
    for record in records:
        try:
            msg = decode(record.value, EmailRendered)
        except DecodeError as exc:
            await dead_letter(producer, record, str(exc))
            continue
        await pipeline.handle(msg)
        HANDLED.labels("handled").inc()
    last = records[-1]
    return TopicPartition(last.topic, last.partition), last.offset + 1


async def dead_letter(producer: AIOKafkaProducer, record: ConsumerRecord, reason: str) -> None:
    event = dead_lettered(
        service="sender",
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        reason=reason,
    )
    await producer.send_and_wait(DEAD_LETTER.name, encode(event), key=record.key)
    HANDLED.labels("dead_lettered").inc()
    log.warning(
        "dead-lettered a record", extra={"fields": {"topic": record.topic, "offset": record.offset, "reason": reason}}
    )
