"""The gateway's Kafka producer, (re)connected in the background so that the HTTP API can
answer 503 while Kafka is unreachable instead of refusing to start."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from mailstream.core.kafka import ReliableProducer, kafka_reachable, reliable_producer
from mailstream.core.retry import TransientError, backoff

log = logging.getLogger("mailstream.gateway.kafka")


class KafkaUnavailable(TransientError):
    """The producer is not connected or Kafka did not acknowledge: the same send may succeed later."""


class KafkaLink:
    def __init__(self, *, bootstrap: str, client_id: str = "mailstream-gateway", retry_s: float = 1.0) -> None:
        # retry_s caps the wait between two connection attempts (core.retry's backoff up to it)
        self.bootstrap, self.client_id, self.retry_s = bootstrap, client_id, retry_s
        self.producer: ReliableProducer | None = None

    async def connect(self) -> bool:
        producer = reliable_producer(self.bootstrap, client_id=self.client_id)
        try:
            await producer.start()
        except Exception as exc:
            log.warning("kafka not reachable, retrying", extra={"fields": {"error": repr(exc)}})
            await producer.stop()
            return False
        self.producer = producer
        log.info("kafka producer started")
        return True

    async def keep_connected(self, stop: asyncio.Event) -> None:
        # A loop, not core.retry.retrying: a wait must end on `stop` without cancelling a half-started producer.
        attempt = 0
        while self.producer is None and not stop.is_set():
            if not await self.connect():
                attempt += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff(attempt, most=self.retry_s))

    async def send(self, topic: str, value: bytes, key: bytes) -> None:
        """Returns once Kafka acknowledged the record (acks=all, idempotent producer)."""
        if self.producer is None:
            raise KafkaUnavailable("Kafka is not connected")
        try:
            await self.producer.send_and_wait(topic, value, key=key)
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not acknowledge in time") from exc

    async def send_many(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """(key, value) records batched, returns once every one is acknowledged."""
        if self.producer is None:
            raise KafkaUnavailable("Kafka is not connected")
        try:
            futures = [await self.producer.send(topic, value, key=key) for key, value in records]
            await asyncio.gather(*futures)
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not acknowledge in time") from exc

    async def send_all(self, records) -> None:
        """(topic, key, value) records produced together; returns once every one is acknowledged."""
        if self.producer is None:
            raise KafkaUnavailable("Kafka is not connected")
        try:
            await self.producer.send_all(records)
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not acknowledge in time") from exc

    async def reachable(self) -> bool:
        return self.producer is not None and await kafka_reachable(self.producer)

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
