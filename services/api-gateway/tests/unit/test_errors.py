"""The gateway's errors say whether the same work may succeed later (core.retry's `retriable`)."""

import asyncio

from mailstream.core.retry import is_transient
from mailstream.gateway.errors import ApiError, not_found
from mailstream.gateway.kafka_link import KafkaLink, KafkaUnavailable
from mailstream.gateway.smtp.submission import Rejected


def test_kafka_unavailable_is_transient_and_refusals_are_not():
    assert is_transient(KafkaUnavailable("Kafka is not connected"))
    assert not is_transient(not_found("SMTP token x"))
    assert not is_transient(ApiError(400, "VALIDATION_ERROR", "bad"))
    assert not is_transient(Rejected("550 5.6.0 no From"))


async def test_publishing_without_a_connection_is_kafka_unavailable():
    link = KafkaLink(bootstrap="unused:1")
    for publish in (link.send("t", b"v", b"k"), link.send_many("t", []), link.send_all([])):
        try:
            await publish
        except KafkaUnavailable:
            continue
        raise AssertionError("published without a producer")


async def test_keep_connected_retries_with_backoff_until_the_stop_event():
    link = KafkaLink(bootstrap="unused:1", retry_s=0.01)
    stop, attempts = asyncio.Event(), []

    async def connect() -> bool:  # Kafka stays down; stop after three attempts
        attempts.append(asyncio.get_running_loop().time())
        if len(attempts) == 3:
            stop.set()
        return False

    link.connect = connect
    await asyncio.wait_for(link.keep_connected(stop), 5)
    assert len(attempts) == 3 and link.producer is None


async def test_keep_connected_ends_once_connected():
    link = KafkaLink(bootstrap="unused:1", retry_s=0.01)
    outcomes = iter([False, True])

    async def connect() -> bool:
        if next(outcomes):
            link.producer = object()
            return True
        return False

    link.connect = connect
    await asyncio.wait_for(link.keep_connected(asyncio.Event()), 5)
    assert link.producer is not None
