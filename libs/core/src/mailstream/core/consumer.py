"""Consuming Kafka a batch at a time, committing only what is finished.

    loop = BatchLoop(consumer, handle=handle, name="renderer")
    consumer.subscribe(topics, listener=loop)
    await loop.run(stop)

`handle(batches)` gets every partition's records of one fetch and returns, per partition, the
next offset to commit (its last finished record + 1). It is retried while it fails with a
transient error (`core.retry`), so a database or broker outage holds the batch, never drops it;
any other error is logged and the batch is read again from its first record after a pause.

A rebalance waits for the batch in hand: the revoke callback takes the loop's lock, so it runs
between batches, after their commit. Records fetched for partitions this process lost before
the lock was taken are dropped from the batch (their new owner reads them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Gauge, Histogram

from mailstream.core.retry import is_transient, retrying
from mailstream.schemas.topics import MAX_MESSAGE_BYTES

log = logging.getLogger("mailstream.core.consumer")

Batches = dict[TopicPartition, list[ConsumerRecord]]
Handle = Callable[[Batches], Awaitable[dict[TopicPartition, int]]]
OnAssigned = Callable[[set[TopicPartition]], Awaitable[None]]

PAUSE_AFTER_FAILED_BATCH_S = 1.0

# Every BatchLoop's figures, labelled by its name (the consumer: renderer, tracker, ...).
RECORDS = Counter("mailstream_consumer_records_total", "Records handled", ["consumer", "topic"])
BATCH_SECONDS = Histogram(
    "mailstream_consumer_batch_seconds",
    "Time to handle and commit one batch",
    ["consumer"],
    buckets=(0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60),
)
FAILED_BATCHES = Counter(
    "mailstream_consumer_failed_batches_total", "Batches that failed and are read again", ["consumer"]
)
COMMIT_FAILURES = Counter("mailstream_consumer_commit_failures_total", "Commits the broker refused", ["consumer"])
LAG = Gauge(
    "mailstream_consumer_lag",
    "Records behind the end of each assigned partition, as of this process's last batch from it",
    ["consumer", "topic", "partition"],
)


def batch_consumer(
    bootstrap: str,
    *,
    group_id: str,
    client_id: str,
    fetch_min_bytes: int,
    fetch_max_wait_ms: int,
    assignor=RangePartitionAssignor,
) -> AIOKafkaConsumer:
    """A consumer whose offsets move only when the loop commits finished work.

    fetch_min_bytes / fetch_max_wait_ms: a fetch answers once it has that many bytes or waited
    that long. The default (1 byte) answers as soon as one record is there, so under load every
    record or two costs a fetch round trip, about as much CPU as handling the records."""
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_min_bytes=fetch_min_bytes,
        fetch_max_wait_ms=fetch_max_wait_ms,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_max_bytes=4 * MAX_MESSAGE_BYTES,
        partition_assignment_strategy=(assignor,),
        # A process killed without leaving the group holds its partitions until its session
        # times out: 10 s bounds how long a restarted or surviving process waits for them.
        session_timeout_ms=10_000,
        heartbeat_interval_ms=3_000,
        # The broker checks every batch's CRC when it is produced and TCP checks what travels;
        # checking again costs ~17 us per 25 KB record (librdkafka does not check by default).
        check_crcs=False,
    )


class BatchLoop(ConsumerRebalanceListener):
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        handle: Handle,
        name: str,
        max_records: int = 500,
        on_assigned: OnAssigned | None = None,
        on_revoked: Callable[[set[TopicPartition]], None] | None = None,
        before_fetch: Callable[[], None] | None = None,
    ) -> None:
        self.consumer = consumer
        self.handle = handle
        self.name = name
        self.max_records = max_records
        self.on_assigned = on_assigned
        self.on_revoked = on_revoked
        self.before_fetch = before_fetch
        self.lock = asyncio.Lock()
        self.batches = 0  # batches finished (for tests and metrics)
        self.joined = False  # has joined its group and set the positions of its first assignment

    async def caught_up(self) -> bool:
        """/readyz: the consumer is in its group and reads from where it left off (on_assigned, e.g.
        the tracker's seek to its stored offsets, has run), even with no partitions (a standby)."""
        return self.joined

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self.lock:  # the batch in hand is finished and committed first
            for tp in revoked:  # their new owner reports their lag
                with contextlib.suppress(KeyError):
                    LAG.remove(self.name, tp.topic, str(tp.partition))
            if self.on_revoked is not None:
                self.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info(
            "%s: partitions assigned",
            self.name,
            extra={"fields": {"partitions": sorted(f"{t.topic}:{t.partition}" for t in assigned)}},
        )
        if self.on_assigned is not None:
            await self.on_assigned(set(assigned))
        self.joined = True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.before_fetch is not None:
                self.before_fetch()
            batches = await self.consumer.getmany(timeout_ms=200, max_records=self.max_records)
            if not batches:
                continue
            async with self.lock:
                owned = self.consumer.assignment()
                batches = {tp: records for tp, records in batches.items() if tp in owned and records}
                if batches:
                    await self._finish(batches)

    async def _finish(self, batches: Batches) -> None:
        with BATCH_SECONDS.labels(self.name).time():
            await self._handle_and_commit(batches)
        for tp, records in batches.items():
            RECORDS.labels(self.name, tp.topic).inc(len(records))
            end = self.consumer.highwater(tp)
            if end is not None:
                LAG.labels(self.name, tp.topic, str(tp.partition)).set(max(0, end - records[-1].offset - 1))

    async def _handle_and_commit(self, batches: Batches) -> None:
        try:
            offsets = await retrying(lambda: self.handle(batches), what=f"{self.name}: a batch")
        except Exception:
            FAILED_BATCHES.labels(self.name).inc()
            log.exception("%s: a batch failed; reading it again", self.name)
            for tp, records in batches.items():
                with contextlib.suppress(KafkaError, AssertionError):  # AssertionError: no longer assigned
                    self.consumer.seek(tp, records[0].offset)
            await asyncio.sleep(PAUSE_AFTER_FAILED_BATCH_S)
            return
        self.batches += 1
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            COMMIT_FAILURES.labels(self.name).inc()
            # Lost the partitions (rebalance, session timeout): their new owner reads this batch
            # again; every consumer's handling is idempotent (or, for the tracker, fenced).
            log.warning("%s: commit failed: %r", self.name, exc, extra={"fields": {"transient": is_transient(exc)}})


def next_offsets(batches: Batches) -> dict[TopicPartition, int]:
    """Every partition's last record + 1: what a batch commits once all of it is finished."""
    return {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
