"""Sender process: policy, consumer and producer, delivery records, SMTP, ops endpoints.

Graceful stop (SIGTERM): the loop stops fetching, finishes the batch in hand (in-flight SMTP
transactions complete), commits it, then connections are closed with QUIT.
"""

from __future__ import annotations

import functools

from aiokafka import AIOKafkaConsumer
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.structs import ConsumerRecord

from mailstream.core.db import create_pool, database_reachable
from mailstream.core.kafka import kafka_reachable, reliable_producer
from mailstream.core.logs import configure_logging
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.core.ops_http import ops_app, serve
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.schemas import EmailRendered, dead_lettered, encode
from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, RENDERED, RETRY_TIERS
from mailstream.sender.adapters.deliveries import DeliveryRecords
from mailstream.sender.adapters.dkim_keys import DkimKeys
from mailstream.sender.adapters.dns import MxResolver
from mailstream.sender.adapters.smtp import SmtpTransport
from mailstream.sender.consumer import Loop
from mailstream.sender.finish import Finish
from mailstream.sender.metrics import BACKOFF, OUTCOMES
from mailstream.sender.pipeline import (
    CheckDuplicate,
    CheckThrottle,
    ChooseSourceIp,
    Deliver,
    DkimSign,
    Pipeline,
    ResolveRoute,
)
from mailstream.sender.policy import load_policy
from mailstream.sender.retry import RetrySchedule
from mailstream.sender.settings import SenderSettings
from mailstream.sender.shaping import Shaper, WarmupCounter


def parse_relay(value: str) -> tuple[str, int] | None:
    if not value:
        return None
    host, _, port = value.rpartition(":")
    return (host, int(port)) if host else (value, 25)


class KafkaPublisher:
    def __init__(self, producer, prefix: str) -> None:
        self.producer = producer
        self.delivery_topic = prefix + DELIVERY.name
        self.rendered_topic = prefix + RENDERED.name
        self.retry_topics = [prefix + t.name for t in RETRY_TIERS]

    async def delivery(self, message_id: str, event: bytes) -> None:
        await self.producer.send_and_wait(self.delivery_topic, event, key=message_id.encode())

    async def retry(self, tier: int, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(self.retry_topics[tier], value, key=key)

    async def rendered(self, key: bytes, value: bytes) -> None:
        await self.producer.send_and_wait(self.rendered_topic, value, key=key)


async def main(settings: SenderSettings) -> None:
    log = configure_logging("sender", settings.log_level)
    log.info("starting", extra={"fields": settings.redacted()})
    policy = load_policy(settings.policy_dir)  # a bad policy stops the start, naming file and key
    stop = stop_event()
    pool = await create_pool(settings.database_url)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "sender", migrations_of("mailstream.sender"))
    prefix = settings.sender_topic_prefix
    producer = reliable_producer(settings.kafka_bootstrap, client_id="mailstream-sender")
    publisher = KafkaPublisher(producer, prefix)
    topics = [publisher.rendered_topic, *publisher.retry_topics]
    # Range assignment keeps partition N of email.rendered and of every retry tier (same key,
    # same partition count) on one process: that process owns the IP's traffic and limits.
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.sender_group_id,
        client_id="mailstream-sender",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_partition_fetch_bytes=10 * 1024 * 1024,
        partition_assignment_strategy=(RangePartitionAssignor,),
    )
    transport = SmtpTransport(helo_name=settings.sender_helo_name, timeout=settings.sender_smtp_timeout)
    shaper = Shaper(on_change=lambda ip, site, state: BACKOFF.labels(ip, site).set(state))
    resolver = MxResolver(server=settings.sender_dns_server, timeout=min(10.0, settings.sender_smtp_timeout))
    records = DeliveryRecords(pool)
    schedule = RetrySchedule(
        base=settings.sender_retry_base_seconds,
        max_age=settings.sender_retry_max_age_seconds,
        max_interval=settings.sender_retry_max_interval_seconds,
        tiers=len(RETRY_TIERS),
    )
    finish = Finish(records=records, publisher=publisher, schedule=schedule, policy=policy)
    pipeline = Pipeline(
        (
            CheckDuplicate(records),
            ChooseSourceIp(policy, WarmupCounter()),
            ResolveRoute(
                policy,
                relay=parse_relay(settings.sender_relay),
                resolve=resolver.mx_hosts,
                mx_port=settings.sender_mx_port,
            ),
            DkimSign(DkimKeys(pool).key),
            CheckThrottle(shaper, max_wait=settings.sender_max_throttle_wait),
            Deliver(
                transport,
                shaper,
                policy,
                max_wait=settings.sender_max_throttle_wait,
                on_delivered=finish.record_delivered,
            ),
        )
    )

    async def handle(msg: EmailRendered) -> None:
        attempt, result = await pipeline.run(msg)
        label = await finish(attempt, result)
        OUTCOMES.labels(msg.pool, msg.sending_ip, attempt.destination, label).inc()

    async def dead_letter(record: ConsumerRecord, reason: str) -> None:
        event = dead_lettered(
            service="sender",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            reason=reason,
        )
        await producer.send_and_wait(prefix + DEAD_LETTER.name, encode(event), key=record.key)
        log.warning("dead-lettered a record", extra={"fields": {"topic": record.topic, "offset": record.offset}})

    loop = Loop(
        consumer,
        handle=handle,
        dead_letter=dead_letter,
        retry_topics=set(publisher.retry_topics),
        max_records=settings.sender_max_records,
    )
    consumer.subscribe(topics, listener=loop)
    async with producer, consumer:
        checks = {"postgres": functools.partial(database_reachable, pool), "kafka": lambda: kafka_reachable(producer)}
        ops = await serve(ops_app(checks), settings.http_host, settings.sender_ops_port)
        try:
            await loop.run(stop)
        finally:
            await ops.cleanup()
            await transport.close()
    await pool.close()
    log.info("stopped")


def run() -> None:
    run_loop(main(SenderSettings.from_env()))
