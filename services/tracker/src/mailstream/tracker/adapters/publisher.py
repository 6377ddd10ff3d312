"""Publishes the tracking endpoints' events (engagement, unsubscribe), late bounces (delivery) and
the intake's dead letters."""

from __future__ import annotations

from mailstream.core.kafka import ReliableProducer
from mailstream.schemas import DeliveryAttempted, EngagementRecorded, RecordDeadLettered, UnsubscribeRecorded, encode
from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, ENGAGEMENT, UNSUBSCRIBE
from mailstream.tracker.engagement import unsubscribe_key


class Publisher:
    def __init__(self, *, producer: ReliableProducer) -> None:
        self.producer = producer

    async def engagement(self, evt: EngagementRecorded) -> None:
        """Returns once Kafka acknowledged the event (acks=all)."""
        await self.producer.send_and_wait(ENGAGEMENT.name, encode(evt), key=evt.message_id.encode())

    async def unsubscribe(self, evt: UnsubscribeRecorded) -> None:
        await self.producer.send_and_wait(
            UNSUBSCRIBE.name, encode(evt), key=unsubscribe_key(evt.account_id, evt.recipient)
        )

    async def delivery(self, evt: DeliveryAttempted) -> None:
        """A late bounce, keyed by message id as the sender keys its delivery events."""
        await self.producer.send_and_wait(DELIVERY.name, encode(evt), key=evt.message_id.encode())

    async def dead_letters(self, records: list[RecordDeadLettered]) -> None:
        await self.producer.send_all((DEAD_LETTER.name, r.key, encode(r)) for r in records)
