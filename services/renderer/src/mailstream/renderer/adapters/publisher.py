"""Publishes a batch's outcomes: each rendered message on email.rendered (keyed by its sending
IP) with its metadata on email.rendered.meta (for the tracker), dropped sends on email.delivery,
unreadable records on email.dead-letter. Returns once Kafka acknowledged all of them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from mailstream.core.kafka import ReliableProducer
from mailstream.schemas import (
    DeliveryAttempted,
    EmailRendered,
    MessageRendered,
    RecordDeadLettered,
    SendRequested,
    encode,
)
from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, RENDERED, RENDERED_META

Record = tuple[str, bytes | None, bytes]
Published = EmailRendered | DeliveryAttempted | RecordDeadLettered


def records_of(events: Iterable[Published], origins: Mapping[str, SendRequested] | None = None) -> list[Record]:
    """origins: message id -> its send request, when it came from an automation trigger rule or a
    one-off send (named on the metadata record)."""
    records: list[Record] = []
    for event in events:
        if isinstance(event, EmailRendered):
            records.append((RENDERED.name, event.sending_ip.encode(), encode(event)))
            origin = (origins or {}).get(event.message_id)
            meta = MessageRendered.of(
                event,
                trigger_id=origin.trigger_id if origin else None,
                one_off_send_id=origin.one_off_send_id if origin else None,
            )
            records.append((RENDERED_META.name, meta.message_id.encode(), encode(meta)))
        elif isinstance(event, DeliveryAttempted):
            records.append((DELIVERY.name, event.message_id.encode(), encode(event)))
        else:
            records.append((DEAD_LETTER.name, event.key, encode(event)))
    return records


class Publisher:
    def __init__(self, producer: ReliableProducer) -> None:
        self.producer = producer

    async def publish(self, events: Iterable[Published], origins: Mapping[str, SendRequested] | None = None) -> None:
        await self.producer.send_all(records_of(events, origins))
