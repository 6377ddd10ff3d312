"""ReliableProducer's replacement logic, with stand-in aiokafka producers (the fault suite in
tests/faults restarts a real broker under load)."""

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, OutOfOrderSequenceNumber

from mailstream.core.kafka import ReliableProducer


class StandIn:
    def __init__(self, name: str, fail_with: Exception | None = None, start_fails: bool = False) -> None:
        self.name, self.fail_with, self.start_fails = name, fail_with, start_fails
        self.sent: list[bytes] = []
        self.started = self.stopped = False

    async def start(self):
        if self.start_fails:
            raise KafkaConnectionError("no broker")
        self.started = True

    async def stop(self):
        self.stopped = True

    async def send(self, topic, value=None, key=None, **kw):
        acked = asyncio.get_running_loop().create_future()
        if self.fail_with is not None:
            acked.set_exception(self.fail_with)
        else:
            self.sent.append(value)
            acked.set_result((topic, len(self.sent)))
        return acked


def producer_of(*stand_ins: StandIn) -> ReliableProducer:
    made = iter(stand_ins)
    return ReliableProducer(lambda: next(made))


async def test_sends_after_a_producer_state_error_go_through_a_fresh_producer():
    broken, fresh = StandIn("broken", OutOfOrderSequenceNumber()), StandIn("fresh")
    producer = producer_of(broken, fresh)
    await producer.start()
    with pytest.raises(OutOfOrderSequenceNumber):
        await producer.send_and_wait("t", b"lost", key=b"k")  # the caller sees the failure
    assert await producer.send_and_wait("t", b"next", key=b"k") == ("t", 1)
    assert fresh.started and fresh.sent == [b"next"]
    await asyncio.sleep(0)
    assert broken.stopped


async def test_concurrent_failures_replace_the_producer_once():
    broken, fresh, spare = StandIn("broken", OutOfOrderSequenceNumber()), StandIn("fresh"), StandIn("spare")
    producer = producer_of(broken, fresh, spare)
    futures = [await producer.send("t", b"x") for _ in range(5)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert all(isinstance(r, OutOfOrderSequenceNumber) for r in results)
    await producer.send_and_wait("t", b"y")
    assert fresh.sent == [b"y"] and not spare.started


async def test_while_kafka_is_unreachable_the_broken_producer_stays_until_a_fresh_one_starts():
    broken = StandIn("broken", OutOfOrderSequenceNumber())
    unreachable, fresh = StandIn("unreachable", start_fails=True), StandIn("fresh")
    producer = producer_of(broken, unreachable, fresh)
    for _ in range(2):
        with pytest.raises(OutOfOrderSequenceNumber):
            await producer.send_and_wait("t", b"x")
    await producer.send_and_wait("t", b"z")
    assert unreachable.stopped and fresh.sent == [b"z"]


async def test_other_errors_keep_the_producer():
    flaky, spare = StandIn("flaky", KafkaConnectionError("timeout")), StandIn("spare")
    producer = producer_of(flaky, spare)
    with pytest.raises(KafkaConnectionError):
        await producer.send_and_wait("t", b"x")
    assert not spare.started


async def test_acknowledged_records_are_counted_per_topic_failed_ones_are_not():
    from prometheus_client import REGISTRY

    def count(topic):
        return REGISTRY.get_sample_value("mailstream_produced_records_total", {"client": "t-1", "topic": topic}) or 0

    producer = ReliableProducer(lambda: StandIn("ok"), name="t-1")
    await producer.send_all([("a", b"k", b"1"), ("a", b"k", b"2"), ("email.dead-letter", None, b"3")])
    await producer.send_and_wait("a", b"4")
    failing = ReliableProducer(lambda: StandIn("down", KafkaConnectionError("down")), name="t-1")
    with pytest.raises(KafkaConnectionError):
        await failing.send_all([("a", b"k", b"5")])
    assert count("a") == 3 and count("email.dead-letter") == 1
