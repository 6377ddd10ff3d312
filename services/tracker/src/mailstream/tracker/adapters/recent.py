"""Recent deliveries: message id -> delivered at, for the last few seconds only, so the click handler
can flag link scanners (a click within seconds of delivery) without a database read.

Every tracker process reads all of email.delivery from its end with a group-less consumer, so the
process answering a click knows the delivery whichever partition it came from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from datetime import datetime

from aiokafka import AIOKafkaConsumer

from mailstream.schemas import DecodeError, DeliveryAttempted, DeliveryOutcome, decode
from mailstream.schemas.topics import DELIVERY

log = logging.getLogger(__name__)


class RecentDeliveries:
    def __init__(self, *, keep_seconds: float = 30.0) -> None:
        self.keep_seconds = keep_seconds
        self._at: dict[str, datetime] = {}
        self._order: deque[tuple[float, str]] = deque()

    def note(self, message_id: str, delivered_at: datetime) -> None:
        self._at[message_id] = delivered_at
        now = time.monotonic()
        self._order.append((now, message_id))
        while self._order and self._order[0][0] < now - self.keep_seconds:
            _, old = self._order.popleft()
            if old != message_id:
                self._at.pop(old, None)

    def delivered_at(self, message_id: str) -> datetime | None:
        return self._at.get(message_id)

    async def follow(self, bootstrap: str) -> None:
        """Runs until cancelled: notes every DELIVERED event from now on."""
        consumer = AIOKafkaConsumer(
            DELIVERY.name,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="latest",
            # a fetch per 100 ms or 16 KB, not per record: a fetch costs far more CPU than a small record.
            # 100 ms keeps a delivery noted before its COMPLETE status shows (the status path waits 200).
            fetch_min_bytes=16 * 1024,
            fetch_max_wait_ms=100,
            check_crcs=False,
        )
        await consumer.start()
        try:
            async for record in consumer:
                try:
                    evt = decode(record.value, DeliveryAttempted)
                except DecodeError:
                    continue
                if evt.outcome is DeliveryOutcome.DELIVERED:
                    self.note(evt.message_id, evt.occurred_at)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("following email.delivery for recent deliveries stopped")
        finally:
            await consumer.stop()
