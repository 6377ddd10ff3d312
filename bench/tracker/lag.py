"""Prints the tracker's consumer-group lag on email.engagement (records not yet counted)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from mailstream.core.settings import CommonSettings
from mailstream.schemas.topics import ENGAGEMENT


async def lag(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets("mailstream-tracker")
        parts = [tp for tp in committed if tp.topic == ENGAGEMENT.name]
        ends = await consumer.end_offsets(parts)
        return sum(ends[tp] - committed[tp].offset for tp in parts)
    finally:
        await consumer.stop()
        await admin.close()


if __name__ == "__main__":
    print(asyncio.run(lag(CommonSettings.from_env().kafka_bootstrap)))
