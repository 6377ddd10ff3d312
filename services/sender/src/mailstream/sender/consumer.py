"""The consume loop over email.rendered and its retry tiers.

Per batch: each partition's records are decoded and handled concurrently (the shaper's gates
and rate limiters bound the SMTP side), then every partition's `last offset + 1` is committed
once all its records are finished (outcome recorded and acked; see finish.py). A retry tier
partition whose head record is not yet due is sought back to that record and paused until its
`not_before`, so waiting never blocks other partitions or topics.

A rebalance waits for the batch in hand: the revoke callback takes the same lock as the loop,
so it runs between batches, after their commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from mailstream.schemas import DecodeError, EmailRendered, decode
from mailstream.sender.metrics import LAG, RETRY_WAIT

log = logging.getLogger("mailstream.sender")

Handle = Callable[[EmailRendered], Awaitable[None]]
DeadLetter = Callable[[ConsumerRecord, str], Awaitable[None]]


class Loop(ConsumerRebalanceListener):
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        handle: Handle,
        dead_letter: DeadLetter,
        retry_topics: set[str],
        max_records: int = 500,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.consumer = consumer
        self.handle = handle
        self.dead_letter = dead_letter
        self.retry_topics = retry_topics
        self.max_records = max_records
        self.clock = clock
        self.paused: dict[TopicPartition, float] = {}
        self.lock = asyncio.Lock()

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:  # the batch in hand is finished and committed first
            for tp in revoked:
                self.paused.pop(tp, None)
                RETRY_WAIT.labels(tp.topic, str(tp.partition)).set(0)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info(
            "partitions assigned", extra={"fields": {"partitions": [f"{t.topic}:{t.partition}" for t in assigned]}}
        )

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._resume_due()
            batches = await self.consumer.getmany(timeout_ms=200, max_records=self.max_records)
            if not batches:
                continue
            async with self.lock:
                done = await asyncio.gather(*(self._partition(tp, records) for tp, records in batches.items()))
                offsets = {tp: offset for tp, offset in done if offset is not None}
                if offsets:
                    try:
                        await self.consumer.commit(offsets)
                    except KafkaError as exc:
                        # Lost the partitions (rebalance, session timeout): the new owner gets
                        # this batch again, and the delivery records make it a no-op at SMTP.
                        log.warning(
                            "commit failed; the batch will be re-consumed", extra={"fields": {"error": str(exc)}}
                        )
                self._update_lag(batches)

    def _resume_due(self) -> None:
        now = self.clock()
        for tp, at in list(self.paused.items()):
            RETRY_WAIT.labels(tp.topic, str(tp.partition)).set(max(0.0, at - now))
            if at <= now and tp in self.consumer.assignment():
                self.consumer.resume(tp)
                del self.paused[tp]

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
            await asyncio.sleep(1)
            return tp, None
        return tp, (last + 1 if last is not None else None)

    def _update_lag(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        for tp, records in batches.items():
            end = self.consumer.highwater(tp)
            if end is not None:
                LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - records[-1].offset - 1))
