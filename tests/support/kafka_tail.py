"""A private, group-less consumer of topics from their current end: what arrives after the action.

async with Tail(ENGAGEMENT, record_type=EngagementRecorded) as tail:
    ...  # the action
    found = await tail.collect(lambda e: e.message_id == id_, count=1)
"""

from __future__ import annotations

import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from mailstream.schemas import decode
from testkit import common_settings


class Tail:
    def __init__(self, *specs, record_type=None) -> None:
        self.specs, self.record_type = specs, record_type
        self.records: list = []

    async def __aenter__(self) -> Tail:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=common_settings().kafka_bootstrap,
            group_id=None,
            max_partition_fetch_bytes=10 * 1024 * 1024,
        )
        await self.consumer.start()
        parts = [TopicPartition(s.name, p) for s in self.specs for p in range(s.partitions)]
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:
            await self.consumer.position(tp)  # resolve "end" now, before the action
        return self

    async def __aexit__(self, *exc) -> None:
        await self.consumer.stop()

    async def collect(self, match, *, count: int, within: float = 20.0, settle: float = 0.0) -> list:
        """Records matching `match` until `count` arrived (then `settle` more seconds, to see extras)."""
        deadline = time.monotonic() + within
        found = [r for r in self.records if match(r)]
        settle_until = None
        while time.monotonic() < deadline:
            if len(found) >= count:
                settle_until = settle_until or time.monotonic() + settle
                if time.monotonic() >= settle_until:
                    break
            batches = await self.consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for r in records:
                    try:
                        value = decode(r.value, self.record_type)
                    except Exception:  # other suites publish junk on purpose
                        continue
                    self.records.append(value)
                    if match(value):
                        found.append(value)
        return found
