"""Publishes engagement and unsubscribe events (the tracking request path's only I/O)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from mailstream.schemas import EngagementRecorded, UnsubscribeRecorded, encode
from mailstream.schemas.topics import ENGAGEMENT, UNSUBSCRIBE
from mailstream.tracker.engagement import unsubscribe_key


class Publisher:
    def __init__(self, *, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def engagement(self, evt: EngagementRecorded) -> None:
        """Returns once Kafka acknowledged the event (acks=all)."""
        await self.producer.send_and_wait(ENGAGEMENT.name, encode(evt), key=evt.message_id.encode())

    async def unsubscribe(self, evt: UnsubscribeRecorded) -> None:
        await self.producer.send_and_wait(
            UNSUBSCRIBE.name, encode(evt), key=unsubscribe_key(evt.account_id, evt.recipient)
        )
