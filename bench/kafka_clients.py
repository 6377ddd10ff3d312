"""Kafka client CPU per record on a renderer-like hop, and serialization CPU per record.

    .mailstream/venv/bin/python bench/kafka_clients.py [--records 20000] [--large-records 8000] [--runs 3]
                          [--variants aiokafka-send,...] [--sizes small,large]
                          [--skip-kafka] [--skip-serialization] [--bootstrap 127.0.0.1:9092]

The hop: consume every record of an input topic (6 partitions, pre-filled once per size), produce one
record of the same size per consumed record to an output topic (6 partitions, keyed by a sending IP)
with acks=all and an idempotent producer, and commit the consumed offsets only once the produced
records are acknowledged, a batch at a time. Each run is a fresh child process with its own consumer
group and output topic; it reports the CPU time of the whole process, all its threads included
(getrusage RUSAGE_SELF: librdkafka's threads count), from the moment its
partitions are assigned to the moment the last offsets are committed, and the wall time of the same
window. The runs go round-robin over the variants, so that a drift of the machine's load is spread
over all of them. The parent checks after each run that the output topic holds exactly one record
per input record and that the group committed every input offset.

Variants (VARIANTS, in the order of the tables): aiokafka-send, getmany + send() per record with the
project's producer settings (max_batch_size 16 KB, aiokafka's default), and aiokafka-send-1mb with
1 MB batches; aiokafka-batch, getmany + create_batch()/send_batch() per partition, and
aiokafka-batch-nocrc without the consumer's CRC check; confluent-kafka (librdkafka) blocking, inside
a uvloop loop through run_in_executor, and through its own asyncio API (confluent_kafka.aio
AIOConsumer / AIOProducer). confluent-kafka is not a project dependency: install it into the venv
for the measurement (`pip install confluent-kafka==2.16.1`); without it those variants are skipped.
Serialization: the project's Avro single-object codec against fastavro schemaless with a pre-parsed
schema, msgspec (msgpack, JSON; `pip install msgspec==0.22.0`, same remark) and orjson, per record.
Results and their reading: bench/kafka_clients.md. Its faust row measured the renderer's Faust shape
of commit 0854a3e; that variant left this script with mailstream.core.faust_runtime (the services
no longer use Faust), so rerun it from that commit.

Topics (`bench-clients-<run id>-...`) and consumer groups are created by this script and deleted at
the end, also after a failure; nothing else on the stack is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import functools
import io
import json
import os
import resource
import statistics
import sys
import time
import timeit
import traceback
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.protocol.admin import DeleteGroupsRequest

from mailstream.schemas import EmailRendered, SendRequested, SubscriptionType, decode, encode
from mailstream.schemas.codec import load_schema
from mailstream.schemas.topics import MAX_MESSAGE_BYTES

PARTITIONS = 6
TOPIC_PREFIX = "bench-clients-"
BATCH_RECORDS = 500  # records per consume call (getmany / consume)
FETCH_MIN_BYTES = 64 * 1024  # as the renderer's consumer
FETCH_MAX_WAIT_MS = 50
SENDING_IPS = [f"10.20.{n // 8}.{n % 8 + 1}".encode() for n in range(32)]  # output keys
CHILD_TIMEOUT = 180.0  # seconds for one run, group join and shutdown included
SESSION_TIMEOUT_S = 10  # a killed run's consumer leaves its group this long after (as the services')
SIZES = {"small": "~1.5 KB (a send request)", "large": "~25 KB (a rendered message)"}


# --- the records ---------------------------------------------------------------------------------


def now_ms() -> datetime:
    """Now, to the millisecond (Avro's timestamp-millis), so that every codec round-trips it."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def send_request(i: int, *, filler: int = 0) -> SendRequested:
    """A single-send request with contact and custom properties, like the gateway's."""
    items = [{"name": f"Product {n}", "qty": n % 3 + 1, "price": f"{9.99 + n:.2f}"} for n in range(10)]
    custom = {"order_id": f"A-{100000 + i}", "items": items, "note": "x" * filler}
    return SendRequested(
        message_id=str(uuid.uuid4()),
        status_id=str(uuid.uuid4()),
        account_id=4242,
        to=f"recipient{i}@customer.example",
        requested_at=now_ms(),
        email_id=987654,
        email_version=3,
        reply_to=("support@shop.example",),
        send_id=f"send-{i}",
        contact_properties={
            "firstname": "Ada",
            "lastname": "Lovelace",
            "company": "Analytical Engines Ltd",
            "city": "London",
            "country": "United Kingdom",
            "plan": "premium",
        },
        custom_properties_json=json.dumps(custom, separators=(",", ":")),
    )


def sized_send_request(i: int, target: int = 1500) -> SendRequested:
    base = len(encode(send_request(i)))
    return send_request(i, filler=max(0, target - base))


def rendered(i: int, mime_bytes: int = 25 * 1024) -> EmailRendered:
    """A rendered message whose MIME is `mime_bytes` long."""
    head = (
        f"Message-ID: <{uuid.uuid4()}@shop.example>\r\nFrom: Shop <orders@shop.example>\r\n"
        f"To: recipient{i}@customer.example\r\nSubject: Your order\r\nMIME-Version: 1.0\r\n"
        'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
    ).encode()
    line = base64.encodebytes(b"<p>Thanks for your order.</p>" * 2)
    body = (line * (mime_bytes // len(line) + 1)).replace(b"\n", b"\r\n")
    now = now_ms()
    return EmailRendered(
        message_id=str(uuid.uuid4()),
        status_id=str(uuid.uuid4()),
        account_id=4242,
        subscription_type=SubscriptionType.TRANSACTIONAL,
        mail_from="bounce+4242@mail.shop.example",
        recipients=(f"recipient{i}@customer.example",),
        pool="default",
        sending_ip=SENDING_IPS[i % len(SENDING_IPS)].decode(),
        sending_domain="mail.shop.example",
        mime=(head + body)[:mime_bytes],
        requested_at=now,
        rendered_at=now,
        email_id=987654,
    )


def input_record(size: str, i: int) -> tuple[bytes, bytes]:
    """(key, value) of input record i: keyed by the recipient address, as email.send.requested is."""
    value = encode(sized_send_request(i)) if size == "small" else encode(rendered(i))
    return f"recipient{i}@customer.example".encode(), value


def output_key(offset: int) -> bytes:
    return SENDING_IPS[offset % len(SENDING_IPS)]


# --- measuring a run -----------------------------------------------------------------------------


def cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds of this process, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


class Window:
    """CPU and wall time from the partitions' assignment to the last commit."""

    def __init__(self) -> None:
        self.started: tuple[float, float, float] | None = None
        self.took: dict[str, float] = {}

    def start(self) -> None:
        if self.started is None:
            self.started = (*cpu_seconds(), time.perf_counter())

    def stop(self) -> None:
        if self.started is None:
            raise RuntimeError("the run ended before its partitions were assigned")
        (user, system), wall = cpu_seconds(), time.perf_counter()
        user0, system0, wall0 = self.started
        self.took = {"user_s": user - user0, "sys_s": system - system0, "wall_s": wall - wall0}
        self.took["cpu_s"] = self.took["user_s"] + self.took["sys_s"]

    def result(self, records: int, **extra: Any) -> dict[str, Any]:
        return {**self.took, "records": records, **extra}


@dataclasses.dataclass
class Spec:
    """What a child run does; passed to it as JSON."""

    variant: str
    bootstrap: str
    input: str
    output: str
    group: str
    ends: dict[str, int]  # input partition -> end offset (JSON keys are strings)

    @property
    def records(self) -> int:
        return sum(self.ends.values())


def aiokafka_consumer(spec: Spec, *, check_crcs: bool = True) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=spec.bootstrap,
        group_id=spec.group,
        client_id=f"{spec.group}-consumer",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        fetch_min_bytes=FETCH_MIN_BYTES,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        check_crcs=check_crcs,
        session_timeout_ms=SESSION_TIMEOUT_S * 1000,
    )


def aiokafka_producer(spec: Spec, *, max_batch_size: int = 16384) -> AIOKafkaProducer:
    """The project's reliable_producer settings (libs/core kafka.py): acks=all, idempotent, no linger."""
    return AIOKafkaProducer(
        bootstrap_servers=spec.bootstrap,
        client_id=f"{spec.group}-producer",
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        request_timeout_ms=10000,
        max_request_size=MAX_MESSAGE_BYTES,
        max_batch_size=max_batch_size,
    )


async def run_aiokafka(spec: Spec, *, batches: bool, check_crcs: bool = True, max_batch_size: int = 16384) -> dict:
    window = Window()

    class Assigned(ConsumerRebalanceListener):
        async def on_partitions_revoked(self, revoked) -> None:
            pass

        async def on_partitions_assigned(self, assigned) -> None:
            if assigned:
                window.start()

    consumer = aiokafka_consumer(spec, check_crcs=check_crcs)
    consumer.subscribe([spec.input], listener=Assigned())
    producer = aiokafka_producer(spec, max_batch_size=max_batch_size)
    await producer.start()
    try:
        await consumer.start()
        try:
            out = spec.output
            partitions = sorted(await producer.partitions_for(out))  # metadata before the window
            partition_of = DefaultPartitioner()
            done = 0
            while done < spec.records:
                fetched = await consumer.getmany(timeout_ms=1000, max_records=BATCH_RECORDS)
                if not fetched:
                    continue
                acks: list[asyncio.Future] = []
                offsets: dict[TopicPartition, int] = {}
                if batches:
                    builders: dict[int, Any] = {}
                    for tp, messages in fetched.items():
                        for m in messages:
                            key = output_key(m.offset)
                            p = partition_of(key, partitions, partitions)
                            builder = builders.get(p)
                            if builder is None:
                                builder = builders[p] = producer.create_batch()
                            if builder.append(key=key, value=m.value, timestamp=None) is None:
                                acks.append(await producer.send_batch(builder, out, partition=p))
                                builder = builders[p] = producer.create_batch()
                                builder.append(key=key, value=m.value, timestamp=None)
                        offsets[tp] = messages[-1].offset + 1
                        done += len(messages)
                    for p, builder in builders.items():
                        acks.append(await producer.send_batch(builder, out, partition=p))
                else:
                    for tp, messages in fetched.items():
                        for m in messages:
                            acks.append(await producer.send(out, m.value, key=output_key(m.offset)))
                        offsets[tp] = messages[-1].offset + 1
                        done += len(messages)
                await asyncio.gather(*acks)  # raises if a record was not acknowledged
                await consumer.commit(offsets)
            window.stop()
        finally:
            await consumer.stop()
    finally:
        await producer.stop()
    return window.result(done, max_batch_size=max_batch_size)


# --- confluent-kafka -----------------------------------------------------------------------------


def confluent_configs(spec: Spec) -> tuple[dict, dict]:
    consumer = {
        "bootstrap.servers": spec.bootstrap,
        "group.id": spec.group,
        "client.id": f"{spec.group}-consumer",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "fetch.min.bytes": FETCH_MIN_BYTES,
        "fetch.wait.max.ms": FETCH_MAX_WAIT_MS,
        "max.partition.fetch.bytes": MAX_MESSAGE_BYTES,
        "session.timeout.ms": SESSION_TIMEOUT_S * 1000,
    }
    producer = {
        "bootstrap.servers": spec.bootstrap,
        "client.id": f"{spec.group}-producer",
        "acks": "all",
        "enable.idempotence": True,
        "message.max.bytes": MAX_MESSAGE_BYTES,
        # The Java client's and aiokafka's partitioner: the same key lands on the same partition
        # whichever client produced it (librdkafka's default is consistent_random, CRC32).
        "partitioner": "murmur2_random",
    }
    return consumer, producer


def confluent_offsets(latest: dict[tuple[str, int], int]) -> list:
    from confluent_kafka import TopicPartition as CTopicPartition

    return [CTopicPartition(topic, partition, offset) for (topic, partition), offset in latest.items()]


def check_committed(committed) -> None:
    failed = [tp for tp in committed or () if tp.error is not None]
    if failed:
        raise RuntimeError(f"commit failed: {failed}")


def run_confluent_blocking(spec: Spec) -> dict:
    from confluent_kafka import Consumer, KafkaException, Producer

    window = Window()
    consumer_conf, producer_conf = confluent_configs(spec)
    errors: list = []

    def delivered(err, _msg) -> None:
        if err is not None:
            errors.append(err)

    producer = Producer({**producer_conf, "on_delivery": delivered})
    producer.list_topics(spec.output, timeout=10)  # metadata before the window
    consumer = Consumer(consumer_conf)
    consumer.subscribe([spec.input], on_assign=lambda _c, partitions: partitions and window.start())
    done = 0
    try:
        while done < spec.records:
            messages = consumer.consume(num_messages=BATCH_RECORDS, timeout=1.0)
            if not messages:
                continue
            latest: dict[tuple[str, int], int] = {}
            for m in messages:
                if m.error() is not None:
                    raise KafkaException(m.error())
                produce(producer, spec.output, m.value(), output_key(m.offset()))
                latest[(m.topic(), m.partition())] = m.offset() + 1
            if producer.flush(30) or errors:
                raise RuntimeError(f"records not acknowledged: {errors[:3]}")
            check_committed(consumer.commit(offsets=confluent_offsets(latest), asynchronous=False))
            done += len(messages)
        window.stop()
    finally:
        consumer.close()
        producer.flush(10)
    return window.result(done)


def produce(producer, topic: str, value: bytes, key: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key)
            return
        except BufferError:  # librdkafka's queue is full: serve delivery reports, then retry
            producer.poll(0.1)


async def run_confluent_executor(spec: Spec) -> dict:
    """The blocking client inside an asyncio service: consume, flush and commit in a thread, produce
    (which does not block) on the event loop."""
    from concurrent.futures import ThreadPoolExecutor

    from confluent_kafka import Consumer, KafkaException, Producer

    window = Window()
    loop = asyncio.get_running_loop()
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kafka")
    consumer_conf, producer_conf = confluent_configs(spec)
    errors: list = []

    def delivered(err, _msg) -> None:  # runs in the thread that serves delivery reports (flush)
        if err is not None:
            errors.append(err)

    producer = Producer({**producer_conf, "on_delivery": delivered})
    await loop.run_in_executor(thread, lambda: producer.list_topics(spec.output, timeout=10))
    consumer = Consumer(consumer_conf)
    consumer.subscribe([spec.input], on_assign=lambda _c, partitions: partitions and window.start())
    done = 0
    try:
        while done < spec.records:
            messages = await loop.run_in_executor(thread, consumer.consume, BATCH_RECORDS, 1.0)
            if not messages:
                continue
            latest: dict[tuple[str, int], int] = {}
            for m in messages:
                if m.error() is not None:
                    raise KafkaException(m.error())
                produce(producer, spec.output, m.value(), output_key(m.offset()))
                latest[(m.topic(), m.partition())] = m.offset() + 1
            if await loop.run_in_executor(thread, producer.flush, 30) or errors:
                raise RuntimeError(f"records not acknowledged: {errors[:3]}")
            commit = functools.partial(consumer.commit, offsets=confluent_offsets(latest), asynchronous=False)
            check_committed(await loop.run_in_executor(thread, commit))
            done += len(messages)
        window.stop()
    finally:
        await loop.run_in_executor(thread, consumer.close)
        await loop.run_in_executor(thread, producer.flush, 10)
        thread.shutdown()
    return window.result(done)


async def run_confluent_aio(spec: Spec) -> dict:
    """confluent-kafka's own asyncio API (confluent_kafka.aio, experimental in 2.x)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.aio import AIOConsumer, AIOProducer

    window = Window()
    consumer_conf, producer_conf = confluent_configs(spec)
    producer = AIOProducer(producer_conf)
    await producer.list_topics(spec.output, timeout=10)
    consumer = AIOConsumer(consumer_conf)

    async def assigned(_consumer, partitions) -> None:
        if partitions:
            window.start()

    await consumer.subscribe([spec.input], on_assign=assigned)
    done = 0
    try:
        while done < spec.records:
            messages = await consumer.consume(num_messages=BATCH_RECORDS, timeout=1.0)
            if not messages:
                continue
            latest: dict[tuple[str, int], int] = {}
            acks = []
            for m in messages:
                if m.error() is not None:
                    raise KafkaException(m.error())
                acks.append(await producer.produce(spec.output, value=m.value(), key=output_key(m.offset())))
                latest[(m.topic(), m.partition())] = m.offset() + 1
            # AIOProducer resolves its futures only when delivery reports are served (flush, or its
            # 1 s buffer timeout), from its worker thread: flush first, then read the results.
            await producer.flush()
            await asyncio.gather(*acks)
            check_committed(await consumer.commit(offsets=confluent_offsets(latest), asynchronous=False))
            done += len(messages)
        window.stop()
    finally:
        await consumer.close()
        await producer.close()
    return window.result(done)


# --- the variants --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    note: str
    run: Callable[[Spec], Any]  # a coroutine function, or a function returning its result
    needs: str | None = None  # an optional package


VARIANTS = [
    Variant(
        "aiokafka-send",
        "getmany(500) + send() per record (max_batch_size 16 KB, the default), gather, commit",
        lambda spec: run_aiokafka(spec, batches=False),
    ),
    Variant(
        "aiokafka-send-1mb",
        "as aiokafka-send, producer max_batch_size 1 MB",
        lambda spec: run_aiokafka(spec, batches=False, max_batch_size=1024 * 1024),
    ),
    Variant(
        "aiokafka-batch",
        "getmany(500) + create_batch()/send_batch() per partition (1 MB batches), gather, commit",
        lambda spec: run_aiokafka(spec, batches=True, max_batch_size=1024 * 1024),
    ),
    Variant(
        "aiokafka-batch-nocrc",
        "as aiokafka-batch, consumer check_crcs=False",
        lambda spec: run_aiokafka(spec, batches=True, check_crcs=False, max_batch_size=1024 * 1024),
    ),
    Variant(
        "confluent-blocking",
        "consume(500) + produce() per record, flush(), commit(asynchronous=False); no event loop",
        run_confluent_blocking,
        "confluent_kafka",
    ),
    Variant(
        "confluent-executor",
        "the same in uvloop: consume/flush/commit via run_in_executor, produce() on the loop",
        run_confluent_executor,
        "confluent_kafka",
    ),
    Variant(
        "confluent-aio",
        "confluent_kafka.aio AIOConsumer.consume(500) + AIOProducer.produce() per record, flush, commit",
        run_confluent_aio,
        "confluent_kafka",
    ),
]
BY_NAME = {v.name: v for v in VARIANTS}


def available(package: str | None) -> bool:
    if package is None:
        return True
    try:
        __import__(package)
    except ImportError:
        return False
    return True


def emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def child(spec_json: str) -> None:
    spec = Spec(**json.loads(spec_json))
    variant = BY_NAME[spec.variant]
    if variant.run is run_confluent_blocking:
        emit(run_confluent_blocking(spec))
    else:
        import uvloop

        emit(uvloop.run(variant.run(spec)))  # the services run on uvloop (mailstream.core.runtime)


# --- the parent: topics, input, runs, checks, cleanup --------------------------------------------


class Broker:
    """Admin operations of the parent, and the names it created (to delete them at the end)."""

    def __init__(self, bootstrap: str, run_id: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = f"{TOPIC_PREFIX}{run_id}-"
        self.admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        self.topics: set[str] = set()
        self.groups: set[str] = set()

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self.admin.start(), 15)
            await asyncio.wait_for(self.admin.describe_cluster(), 15)
        except (KafkaError, OSError, TimeoutError) as exc:
            await self.admin.close()
            raise SystemExit(
                f"cannot reach Kafka at {self.bootstrap} ({exc!r}): is the local stack running? "
                "(`--bootstrap host:port` to use another broker)"
            ) from exc

    async def close(self) -> None:
        await self.admin.close()

    async def create_topic(self, name: str) -> None:
        assert name.startswith(self.prefix)
        self.topics.add(name)
        topic = NewTopic(name, PARTITIONS, 1, topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)})
        await self.admin.create_topics([topic], timeout_ms=15000)
        for _ in range(100):  # until the metadata has every partition's leader
            meta = await self.admin.describe_topics([name])
            if meta and not meta[0]["error_code"] and len(meta[0]["partitions"]) == PARTITIONS:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"topic {name} did not appear in the metadata")

    async def delete_topics(self, names: list[str]) -> None:
        names = [n for n in names if n.startswith(self.prefix)]
        if names:
            await self.admin.delete_topics(names, timeout_ms=15000)
            self.topics.difference_update(names)

    async def delete_leftovers(self) -> None:
        """Deletes every topic of this run, also any that a client's metadata request re-created
        after its deletion (the broker may create topics on metadata requests)."""
        await self.delete_topics(sorted(self.topics))
        await asyncio.sleep(1)
        await self.delete_topics([t for t in await self.admin.list_topics() if t.startswith(self.prefix)])

    async def end_offsets(self, topic: str) -> dict[int, int]:
        # A consumer per query: one kept would go on asking for the metadata of deleted topics.
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            for attempt in range(20):
                try:
                    ends = await consumer.end_offsets(tps)
                    return {tp.partition: offset for tp, offset in ends.items()}
                except KafkaError:
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.25)
            raise AssertionError("unreachable")
        finally:
            await consumer.stop()

    async def committed(self, group: str, topic: str) -> dict[int, int]:
        offsets = await self.admin.list_consumer_group_offsets(group)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}

    async def delete_groups(self) -> list[str]:
        """Deletes this run's consumer groups; returns those that could not be deleted (yet)."""
        left = []
        for group in sorted(self.groups):
            try:
                node = await self.admin.find_coordinator(group)
                response = await self.admin._send_request(DeleteGroupsRequest([group]), node)
                codes = [code for _name, code in response.results]
            except KafkaError as exc:
                codes = [repr(exc)]
            if any(code not in (0, 69) for code in codes):  # 69: GROUP_ID_NOT_FOUND
                left.append(f"{group} ({codes})")
            else:
                self.groups.discard(group)
        return left


async def fill(bootstrap: str, topic: str, size: str, count: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
        max_batch_size=1024 * 1024,
        max_request_size=MAX_MESSAGE_BYTES,
    )
    await producer.start()
    try:
        pending = []
        for i in range(count):
            key, value = input_record(size, i)
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


SCRIPT = str(Path(__file__).resolve())


async def run_child(spec: Spec) -> dict:
    args = [sys.executable, SCRIPT, "--child", json.dumps(dataclasses.asdict(spec))]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), CHILD_TIMEOUT)
    except TimeoutError:
        proc.kill()  # our own child, by its pid
        await proc.wait()
        raise RuntimeError(f"{spec.variant}: no result after {CHILD_TIMEOUT:.0f} s") from None
    results = [line.partition("RESULT ")[2] for line in out.decode(errors="replace").splitlines() if "RESULT " in line]
    if not results:
        tail = "\n".join(err.decode(errors="replace").splitlines()[-25:])
        raise RuntimeError(f"{spec.variant}: the run failed (exit {proc.returncode}):\n{tail}")
    return json.loads(results[-1])


async def measure_kafka(args, broker: Broker, run_id: str) -> dict[str, dict[str, list[dict]]]:
    variants = [BY_NAME[name] for name in args.variants]
    skipped = [v.name for v in variants if not available(v.needs)]
    if skipped:
        print(f"skipped (package not installed): {', '.join(skipped)}", file=sys.stderr)
    variants = [v for v in variants if v.name not in skipped]
    results: dict[str, dict[str, list[dict]]] = {}
    for size in args.sizes:
        count = args.records if size == "small" else args.large_records
        source = f"{TOPIC_PREFIX}{run_id}-in-{size}"
        await broker.create_topic(source)
        started = time.perf_counter()
        await fill(broker.bootstrap, source, size, count)
        ends = await broker.end_offsets(source)
        value_bytes = len(input_record(size, 0)[1])
        print(
            f"{size}: {count:,} input records of {value_bytes:,} bytes in {source}, "
            f"filled in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        results[size] = {v.name: [] for v in variants}
        for run in range(1, args.runs + 1):
            for variant in variants:
                name = f"{TOPIC_PREFIX}{run_id}-{size}-{variant.name}-{run}"
                await broker.create_topic(name)
                broker.groups.add(name)
                spec = Spec(variant.name, broker.bootstrap, source, name, name, {str(p): e for p, e in ends.items()})
                try:
                    result = await run_child(spec)
                    produced = sum((await broker.end_offsets(name)).values())
                    committed = await broker.committed(name, source)
                finally:
                    await broker.delete_topics([name])
                if result.get("idempotent") is False:
                    raise RuntimeError(f"{variant.name}: the producer was not idempotent")
                if result["records"] != count or produced != count or committed != ends:
                    raise RuntimeError(
                        f"{variant.name} run {run}: handled {result['records']}, produced {produced} of {count}; "
                        f"committed {committed}, expected {ends}"
                    )
                results[size][variant.name].append(result)
                print(
                    f"  run {run} {variant.name:<22} {1e6 * result['cpu_s'] / count:8.1f} us CPU/record "
                    f"({1e6 * result['sys_s'] / count:.1f} system)  "
                    f"{count / result['wall_s']:9,.0f} records/s wall",
                    file=sys.stderr,
                )
        await broker.delete_topics([source])
    return results


def span(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if format(low, fmt) == format(high, fmt) else f"{format(low, fmt)} - {format(high, fmt)}"


def print_kafka_tables(args, results: dict[str, dict[str, list[dict]]]) -> None:
    for size, by_variant in results.items():
        count = args.records if size == "small" else args.large_records
        print(f"\n### {SIZES[size]}: {count:,} records per run, {args.runs} runs (min - max)\n")
        print("| variant | records per CPU-second | CPU us per record | wall records/s | note |")
        print("|---|---:|---:|---:|---|")
        for name, runs in by_variant.items():
            cpu_us = [1e6 * r["cpu_s"] / r["records"] for r in runs]
            per_cpu_s = [r["records"] / r["cpu_s"] for r in runs]
            wall = [r["records"] / r["wall_s"] for r in runs]
            print(
                f"| {name} | {span(per_cpu_s, ',.0f')} | {span(cpu_us, ',.1f')} "
                f"(median {statistics.median(cpu_us):,.1f}) | {span(wall, ',.0f')} | {BY_NAME[name].note} |"
            )


# --- serialization -------------------------------------------------------------------------------


SER_ROUNDS, SER_REPEATS, SER_REPEAT_S = 3, 7, 0.02


def best_us(fn: Callable[[], Any]) -> list[float]:
    """Microseconds per call, one figure per round: the best of SER_REPEATS timeit repeats of about
    SER_REPEAT_S each (the best is the run least disturbed by the machine's other work)."""
    timer = timeit.Timer(fn)
    number, took = timer.autorange()
    number = max(1, int(number * SER_REPEAT_S / max(took, 1e-9)))
    return [1e6 * min(timer.repeat(repeat=SER_REPEATS, number=number)) / number for _ in range(SER_ROUNDS)]


def orjson_codec(record_type: type) -> tuple[Callable[[Any], bytes], Callable[[bytes], Any]]:
    """orjson for typed records: bytes fields as base64, datetimes ISO 8601, back into the dataclass."""
    import orjson

    fields = {f.name: f.type for f in dataclasses.fields(record_type)}
    byte_fields = [n for n, t in fields.items() if "bytes" in str(t)]
    time_fields = [n for n, t in fields.items() if "datetime" in str(t)]
    tuple_fields = [n for n, t in fields.items() if "tuple" in str(t)]

    def default(value):
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()
        raise TypeError

    def dumps(record) -> bytes:
        return orjson.dumps(record, default=default)

    def loads(data: bytes):
        values = orjson.loads(data)
        for name in byte_fields:
            if values.get(name) is not None:
                values[name] = base64.b64decode(values[name])
        for name in time_fields:
            if values.get(name) is not None:
                values[name] = datetime.fromisoformat(values[name])
        for name in tuple_fields:
            values[name] = tuple(values[name])
        return record_type(**values)  # StrEnum fields stay str (equal to their members)

    return dumps, loads


def measure_serialization() -> list[tuple[str, str, list[float], list[float], int]]:
    """(record, codec, encode us, decode us, bytes) per record."""
    try:
        import msgspec
    except ImportError:
        msgspec = None
        print("msgspec not installed: its rows are skipped", file=sys.stderr)
    rows = []
    for label, record in (("SendRequested ~1.5 KB", sized_send_request(1)), ("EmailRendered 25 KB", rendered(1))):
        rows += serialization_rows(label, record, msgspec)
    return rows


def serialization_rows(label: str, record: Any, msgspec) -> list[tuple[str, str, list[float], list[float], int]]:
    import fastavro
    from fastavro import parse_schema

    from mailstream.schemas.codec import _to_avro

    record_type = type(record)
    data = encode(record)
    assert decode(data, record_type) == record
    rows = [
        (
            label,
            "mailstream codec encode/decode (typed)",
            best_us(lambda: encode(record)),
            best_us(lambda: decode(data, record_type)),
            len(data),
        )
    ]

    parsed = parse_schema(load_schema(record_type))
    values = _to_avro(record)

    def avro_write() -> bytes:
        out = io.BytesIO()
        fastavro.schemaless_writer(out, parsed, values)
        return out.getvalue()

    body = avro_write()
    rows.append(
        (
            label,
            "fastavro schemaless, pre-parsed schema (dict)",
            best_us(avro_write),
            best_us(lambda: fastavro.schemaless_reader(io.BytesIO(body), parsed, None)),
            len(body),
        )
    )
    if msgspec is not None:
        for name, module in (("msgpack", msgspec.msgpack), ("JSON", msgspec.json)):
            encoder, decoder = module.Encoder(), module.Decoder(record_type)
            blob = encoder.encode(record)
            assert decoder.decode(blob) == record, name
            rows.append(
                (
                    label,
                    f"msgspec {name} (typed)",
                    best_us(lambda e=encoder: e.encode(record)),
                    best_us(lambda d=decoder, b=blob: d.decode(b)),
                    len(blob),
                )
            )
    dumps, loads = orjson_codec(record_type)
    blob = dumps(record)
    assert loads(blob) == record
    rows.append(
        (
            label,
            "orjson (typed: base64 bytes, ISO datetimes)",
            best_us(lambda: dumps(record)),
            best_us(lambda: loads(blob)),
            len(blob),
        )
    )
    return rows


def print_serialization(rows) -> None:
    print(
        f"\n### Serialization per record: us, {SER_ROUNDS} rounds (min - max) of the best of "
        f"{SER_REPEATS} timeit repeats\n"
    )
    print("| record | codec | encode us | decode us | bytes |")
    print("|---|---|---:|---:|---:|")
    for label, name, enc, dec, size in rows:
        print(f"| {label} | {name} | {span(enc, ',.1f')} | {span(dec, ',.1f')} | {size:,} |")


# --- main ----------------------------------------------------------------------------------------


async def kafka_part(args) -> dict:
    run_id = f"{os.getpid()}-{int(time.time())}"
    broker = Broker(args.bootstrap, run_id)
    await broker.start()
    try:
        return await measure_kafka(args, broker, run_id)
    finally:
        try:
            await broker.delete_leftovers()
            left = await broker.delete_groups()
            if left:  # a killed run's member holds its group until its session times out
                print(f"waiting {SESSION_TIMEOUT_S + 2} s for the sessions of killed runs to expire", file=sys.stderr)
                await asyncio.sleep(SESSION_TIMEOUT_S + 2)
                left = await broker.delete_groups()
            if left:
                print(f"consumer groups not deleted: {', '.join(left)}", file=sys.stderr)
        finally:
            await broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default=os.environ.get("MAILSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9092"))
    parser.add_argument("--records", type=int, default=20000, help="records per run, ~1.5 KB size")
    parser.add_argument("--large-records", type=int, default=8000, help="records per run, ~25 KB size")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--variants", type=lambda s: s.split(","), default=[v.name for v in VARIANTS])
    parser.add_argument("--sizes", type=lambda s: s.split(","), default=list(SIZES))
    parser.add_argument("--skip-kafka", action="store_true")
    parser.add_argument("--skip-serialization", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    unknown = [n for n in args.variants if n not in BY_NAME] + [s for s in args.sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown variant or size: {', '.join(unknown)} (variants: {', '.join(BY_NAME)})")
    print(f"# bench/kafka_clients.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}")
    if not args.skip_serialization:
        print_serialization(measure_serialization())
    if not args.skip_kafka:
        try:
            results = asyncio.run(kafka_part(args))
        except RuntimeError:
            traceback.print_exc()
            raise SystemExit(1) from None
        print_kafka_tables(args, results)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
