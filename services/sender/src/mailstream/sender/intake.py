"""The sender's batch of email.rendered and its retry tiers (run by core.consumer.BatchLoop).

Per batch: each partition's records are decoded and handled concurrently (the shaper's gates
and rate limiters bound the SMTP side); a partition's `last offset + 1` is committed once all
its records are finished (outcome recorded and acked; see finish.py). A retry tier partition
whose head record is not yet due is sought back to that record and paused until its
`not_before`, so waiting never blocks other partitions or topics. A partition whose records
failed is read again (finished messages are no-ops then: delivery records), the others commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from mailstream.core.consumer import Batches
from mailstream.schemas import DecodeError, EmailRendered, decode
from mailstream.sender.metrics import LAG, RETRY_WAIT

log = logging.getLogger("mailstream.sender")

Handle = Callable[[EmailRendered], Awaitable[None]]
DeadLetter = Callable[[ConsumerRecord, str], Awaitable[None]]
PAUSE_AFTER_FAILED_PARTITION_S = 1.0


class SenderIntake:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        handle: Handle,
        dead_letter: DeadLetter,
        retry_topics: set[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.consumer = consumer
        self.handle = handle
        self.dead_letter = dead_letter
        self.retry_topics = retry_topics
        self.clock = clock
        self.paused: dict[TopicPartition, float] = {}

    def forget(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.paused.pop(tp, None)
            RETRY_WAIT.labels(tp.topic, str(tp.partition)).set(0)

    def resume_due(self) -> None:
        now = self.clock()
        for tp, at in list(self.paused.items()):
            RETRY_WAIT.labels(tp.topic, str(tp.partition)).set(max(0.0, at - now))
            if at <= now and tp in self.consumer.assignment():
                self.consumer.resume(tp)
                del self.paused[tp]

    async def __call__(self, batches: Batches) -> dict[TopicPartition, int]:
        done = await asyncio.gather(*(self._partition(tp, records) for tp, records in batches.items()))
        self._update_lag(batches)
        return {tp: offset for tp, offset in done if offset is not None}

    async def _partition(self, tp: TopicPartition, records: list[ConsumerRecord]) -> tuple[TopicPartition, int | None]:
        messages: list[EmailRendered] = []
        seen: set[str] = set()
        last: int | None = None
        for record in records:
            try:
                msg = decode(record.value, EmailRendered)
            except DecodeError as exc:
                await self.dead_letter(record, str(exc))
                last = record.offset
                continue
            if tp.topic in self.retry_topics and msg.not_before is not None:
                due = msg.not_before.timestamp()
                if due > self.clock():
                    # Wait for the head without holding anything else: rewind and pause this partition.
                    self.consumer.seek(tp, record.offset)
                    self.consumer.pause(tp)
                    self.paused[tp] = due
                    break
            last = record.offset
            if msg.message_id in seen:
                # Published twice (a producer retried after a lost acknowledgement): the copies
                # would run concurrently, past CheckDuplicate; the first one is the message.
                continue
            seen.add(msg.message_id)
            messages.append(msg)
        results = await asyncio.gather(*(self.handle(m) for m in messages), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            # Nothing of this partition's batch is committed; finished messages are no-ops on
            # the next pass (delivery records), the others are tried again.
            log.error(
                "batch failed; re-consuming it",
                exc_info=errors[0],
                extra={"fields": {"partition": f"{tp.topic}:{tp.partition}", "errors": len(errors)}},
            )
            self.consumer.seek(tp, records[0].offset)
            await asyncio.sleep(PAUSE_AFTER_FAILED_PARTITION_S)
            return tp, None
        return tp, (last + 1 if last is not None else None)

    def _update_lag(self, batches: Batches) -> None:
        for tp, records in batches.items():
            end = self.consumer.highwater(tp)
            if end is not None:
                LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - records[-1].offset - 1))
