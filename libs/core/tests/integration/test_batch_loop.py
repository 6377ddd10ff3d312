"""BatchLoop against the real broker: every record handled, commits only of finished batches,
transient failures retried in place, other failures read again, partitions shared in a group."""

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from mailstream.core.consumer import BatchLoop, batch_consumer, next_offsets
from mailstream.core.settings import CommonSettings

pytestmark = pytest.mark.integration
BOOTSTRAP = CommonSettings.from_env().kafka_bootstrap


@pytest.fixture
async def topic():
    name = f"test-batch-loop-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await admin.create_topics([NewTopic(name, 3, 1)])
    try:
        yield name
    finally:
        await admin.delete_topics([name])
        await admin.close()


async def produce(topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all")
    await producer.start()
    try:
        futures = [await producer.send(topic, str(i).encode(), key=str(i).encode()) for i in range(n)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def eventually(condition, within: float = 30) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polling what another task changes
            await asyncio.sleep(0.05)


async def run_until(loop: BatchLoop, done) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await eventually(done)
    finally:
        stop.set()
        await task


def consumer_for(topic: str, group: str):
    consumer = batch_consumer(BOOTSTRAP, group_id=group, client_id="test", fetch_min_bytes=1024, fetch_max_wait_ms=50)
    return consumer


async def test_every_record_is_handled_and_the_group_resumes_after_the_last_commit(topic):
    await produce(topic, 600)
    group = f"g-{uuid.uuid4().hex[:6]}"
    seen: list[bytes] = []

    async def handle(batches):
        for records in batches.values():
            seen.extend(r.value for r in records)
        return next_offsets(batches)

    consumer = consumer_for(topic, group)
    loop = BatchLoop(consumer, handle=handle, name="test", max_records=100)
    consumer.subscribe([topic], listener=loop)
    await consumer.start()
    try:
        await run_until(loop, lambda: len(seen) >= 600)
    finally:
        await consumer.stop()
    assert sorted(int(v) for v in seen) == list(range(600))
    assert loop.batches >= 6  # max_records bounds a batch

    await produce(topic, 10)
    again = consumer_for(topic, group)
    later: list[bytes] = []

    async def handle_later(batches):
        for records in batches.values():
            later.extend(r.value for r in records)
        return next_offsets(batches)

    loop2 = BatchLoop(again, handle=handle_later, name="test")
    again.subscribe([topic], listener=loop2)
    await again.start()
    try:
        await run_until(loop2, lambda: len(later) >= 10)
        await asyncio.sleep(0.3)
    finally:
        await again.stop()
    assert sorted(int(v) for v in later) == list(range(10))  # only the new records


async def test_a_transient_failure_holds_the_batch_and_retries_it(topic):
    await produce(topic, 50)
    attempts, handled = [], []

    async def handle(batches):
        attempts.append(1)
        if len(attempts) <= 2:
            raise ConnectionResetError("database blinked")
        for records in batches.values():
            handled.extend(r.value for r in records)
        return next_offsets(batches)

    consumer = consumer_for(topic, f"g-{uuid.uuid4().hex[:6]}")
    loop = BatchLoop(consumer, handle=handle, name="test")
    consumer.subscribe([topic], listener=loop)
    await consumer.start()
    try:
        await run_until(loop, lambda: len(handled) >= 50)
    finally:
        await consumer.stop()
    assert sorted(int(v) for v in handled) == list(range(50))


async def test_a_failed_batch_is_read_again_from_its_first_record(topic):
    await produce(topic, 30)
    failed_once: set[TopicPartition] = set()
    handled: list[bytes] = []

    async def handle(batches):
        fresh = [tp for tp in batches if tp not in failed_once]
        if fresh:
            failed_once.update(fresh)
            raise RuntimeError("a bug")
        for records in batches.values():
            handled.extend(r.value for r in records)
        return next_offsets(batches)

    consumer = consumer_for(topic, f"g-{uuid.uuid4().hex[:6]}")
    loop = BatchLoop(consumer, handle=handle, name="test")
    consumer.subscribe([topic], listener=loop)
    await consumer.start()
    try:
        await run_until(loop, lambda: len(handled) >= 30)
    finally:
        await consumer.stop()
    assert sorted(int(v) for v in handled) == list(range(30))


async def test_two_processes_of_a_group_share_the_partitions_and_each_record_once(topic):
    group = f"g-{uuid.uuid4().hex[:6]}"
    seen: dict[str, list[int]] = {"a": [], "b": []}
    loops, consumers = [], []
    for name in seen:

        async def handle(batches, name=name):
            for records in batches.values():
                seen[name].extend(int(r.value) for r in records)
            return next_offsets(batches)

        consumer = consumer_for(topic, group)
        loop = BatchLoop(consumer, handle=handle, name=name)
        consumer.subscribe([topic], listener=loop)
        await consumer.start()
        loops.append(loop)
        consumers.append(consumer)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(loop.run(stop)) for loop in loops]
    try:
        await eventually(lambda: all(c.assignment() for c in consumers))
        await produce(topic, 300)
        await eventually(lambda: len(seen["a"]) + len(seen["b"]) >= 300)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for c in consumers:
            await c.stop()
    assert sorted(seen["a"] + seen["b"]) == list(range(300))
    assert seen["a"] and seen["b"]


async def test_the_loop_reports_records_handled_and_lag_per_partition(topic):
    from prometheus_client import REGISTRY

    await produce(topic, 300)
    name = f"metrics-{uuid.uuid4().hex[:6]}"
    handled: list[bytes] = []

    async def handle(batches):
        for records in batches.values():
            handled.extend(r.value for r in records)
        return next_offsets(batches)

    consumer = consumer_for(topic, f"g-{uuid.uuid4().hex[:6]}")
    loop = BatchLoop(consumer, handle=handle, name=name, max_records=50)
    consumer.subscribe([topic], listener=loop)
    await consumer.start()
    try:
        await run_until(loop, lambda: len(handled) >= 300)
    finally:
        await consumer.stop()

    def sample(metric, **labels):
        return REGISTRY.get_sample_value(metric, {"consumer": name, **labels})

    assert sample("mailstream_consumer_records_total", topic=topic) == 300
    assert sample("mailstream_consumer_batch_seconds_count") == loop.batches
    lags = [sample("mailstream_consumer_lag", topic=topic, partition=str(p)) for p in range(3)]
    assert lags == [0, 0, 0]  # caught up on every partition it read


async def test_the_loop_is_caught_up_only_once_it_has_joined_and_positioned_its_partitions(topic):
    positioned: list[set] = []

    async def on_assigned(tps):
        await asyncio.sleep(0.2)  # e.g. the tracker reading its stored offsets
        positioned.append(tps)

    async def handle(batches):
        return next_offsets(batches)

    consumer = consumer_for(topic, f"g-{uuid.uuid4().hex[:6]}")
    loop = BatchLoop(consumer, handle=handle, name="test", on_assigned=on_assigned)
    consumer.subscribe([topic], listener=loop)
    assert not await loop.caught_up()
    await consumer.start()
    try:
        await run_until(loop, lambda: bool(positioned))
        assert await loop.caught_up()
        assert positioned == [{TopicPartition(topic, p) for p in range(3)}]
    finally:
        await consumer.stop()
