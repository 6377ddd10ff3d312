"""Publishes the sender's results: outcome events on email.delivery, deferred messages on a
retry tier, rerouted messages on email.rendered, unreadable records on email.dead-letter.
Each call returns once Kafka acknowledged the record (acks=all, idempotent producer)."""

from __future__ import annotations

from mailstream.core.kafka import ReliableProducer
from mailstream.schemas import RecordDeadLettered, encode
from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, RENDERED, RETRY_TIERS


class KafkaPublisher:
    def __init__(self, producer: ReliableProducer, prefix: str = "") -> None:
        self.producer = producer
        self.delivery_topic = prefix + DELIVERY.name
        self.rendered_topic = prefix + RENDERED.name
        self.retry_topics = [prefix + t.name for t in RETRY_TIERS]
        self.dead_letter_topic = prefix + DEAD_LETTER.name

    async def delivery(self, message_id: str, event: bytes) -> None:
        await self.producer.send_and_wait(self.delivery_topic, event, key=message_id.encode())

    async def retry(self, tier: int, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(self.retry_topics[tier], value, key=key)

    async def rendered(self, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(self.rendered_topic, value, key=key)

    async def dead_letter(self, record: RecordDeadLettered) -> None:
        await self.producer.send_and_wait(self.dead_letter_topic, encode(record), key=record.key)
