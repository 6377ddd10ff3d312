"""Kafka client factories with the project's delivery guarantees built in."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mailstream.schemas.topics import MAX_MESSAGE_BYTES


def reliable_producer(bootstrap: str, *, client_id: str, linger_ms: int = 2) -> AIOKafkaProducer:
    """acks=all and idempotence: a send is acknowledged only once the broker has it, once."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        request_timeout_ms=10000,
        max_request_size=MAX_MESSAGE_BYTES,
    )


def manual_commit_consumer(bootstrap: str, *, group_id: str, topics: Iterable[str], client_id: str) -> AIOKafkaConsumer:
    """A consumer whose offsets move only when the caller commits finished work."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
    )


async def kafka_reachable(producer: AIOKafkaProducer) -> bool:
    """Readiness: the producer's client holds metadata from a live broker."""
    try:
        await producer.client.fetch_all_metadata()
        return True
    except Exception:
        return False
