"""Composition root: the sender's dependencies, built and started in `start()`, stopped in
`stop()`; nothing at import time and no module globals."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer

from mailstream.core.consumer import BatchLoop, batch_consumer
from mailstream.core.db import create_pool, database_reachable
from mailstream.core.kafka import ReliableProducer, kafka_reachable, reliable_producer
from mailstream.core.logs import log_send
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.core.schema_registry import use_schema_registry
from mailstream.schemas import EmailRendered, dead_lettered
from mailstream.sender.adapters.deliveries import DeliveryRecords
from mailstream.sender.adapters.dkim_keys import DkimKeys
from mailstream.sender.adapters.dns import MxResolver
from mailstream.sender.adapters.publisher import KafkaPublisher
from mailstream.sender.adapters.smtp import SmtpTransport
from mailstream.sender.adapters.warmup_positions import PgWarmupPositions
from mailstream.sender.finish import Finish
from mailstream.sender.intake import SenderIntake
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
from mailstream.sender.policy import Policy, load_policy
from mailstream.sender.retry import RetrySchedule
from mailstream.sender.settings import SenderSettings
from mailstream.sender.shaping import Shaper

log = logging.getLogger("mailstream.sender")


def parse_relay(value: str) -> tuple[str, int] | None:
    if not value:
        return None
    host, _, port = value.rpartition(":")
    return (host, int(port)) if host else (value, 25)


def build_pipeline(
    settings: SenderSettings, policy: Policy, pool: asyncpg.Pool, transport: SmtpTransport, finish: Finish
) -> Pipeline:
    shaper = Shaper(on_change=lambda ip, site, state: BACKOFF.labels(ip, site).set(state))
    resolver = MxResolver(server=settings.sender_dns_server, timeout=min(10.0, settings.sender_smtp_timeout))
    return Pipeline(
        (
            CheckDuplicate(finish.records),
            ChooseSourceIp(policy, PgWarmupPositions(pool)),
            ResolveRoute(
                policy,
                relay=parse_relay(settings.sender_relay),
                resolve=resolver.mx_hosts,
                mx_port=settings.sender_mx_port,
            ),
            DkimSign(DkimKeys(pool).key, canonicalization=settings.sender_dkim_canonicalization),
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


@dataclass
class Sender:
    settings: SenderSettings
    pool: asyncpg.Pool
    producer: ReliableProducer
    consumer: AIOKafkaConsumer
    transport: SmtpTransport
    loop: BatchLoop

    @classmethod
    async def start(cls, settings: SenderSettings) -> Sender:
        policy = load_policy(settings.policy_dir)  # a bad policy stops the start, naming file and key
        pool = await create_pool(settings.database_url)
        async with pool.acquire() as conn:
            await apply_migrations(conn, "sender", migrations_of("mailstream.sender"))
        producer = reliable_producer(settings.kafka_bootstrap, client_id="mailstream-sender")
        publisher = KafkaPublisher(producer, settings.sender_topic_prefix)
        transport = SmtpTransport(helo_name=settings.sender_helo_name, timeout=settings.sender_smtp_timeout)
        schedule = RetrySchedule(
            base=settings.sender_retry_base_seconds,
            max_age=settings.sender_retry_max_age_seconds,
            max_interval=settings.sender_retry_max_interval_seconds,
            tiers=len(publisher.retry_topics),
        )
        finish = Finish(records=DeliveryRecords(pool), publisher=publisher, schedule=schedule, policy=policy)
        pipeline = build_pipeline(settings, policy, pool, transport, finish)

        async def handle(msg: EmailRendered) -> None:
            attempt, result = await pipeline.run(msg)
            label = await finish(attempt, result)
            OUTCOMES.labels(msg.pool, msg.sending_ip, attempt.destination, label).inc()
            log_send(
                label,
                status_id=msg.status_id,
                message_id=msg.message_id,
                sending_ip=msg.sending_ip,
                destination=attempt.destination,
                attempt=msg.attempt,
                smtp_code=getattr(result, "code", None),
            )

        async def dead_letter(record, reason: str) -> None:
            await publisher.dead_letter(
                dead_lettered(
                    service="sender",
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    value=record.value,
                    reason=reason,
                )
            )
            log.warning("dead-lettered a record", extra={"fields": {"topic": record.topic, "offset": record.offset}})

        # Range assignment keeps partition N of email.rendered and of every retry tier (same key,
        # same partition count) on one process: that process owns the IP's traffic and limits.
        consumer = batch_consumer(
            settings.kafka_bootstrap,
            group_id=settings.sender_group_id,
            client_id="mailstream-sender",
            fetch_min_bytes=settings.sender_fetch_min_bytes,
            fetch_max_wait_ms=settings.sender_fetch_max_wait_ms,
        )
        intake = SenderIntake(
            consumer, handle=handle, dead_letter=dead_letter, retry_topics=set(publisher.retry_topics)
        )
        loop = BatchLoop(
            consumer,
            handle=intake,
            name="sender",
            max_records=settings.sender_max_records,
            before_fetch=intake.resume_due,
            on_revoked=intake.forget,
        )
        consumer.subscribe([publisher.rendered_topic, *publisher.retry_topics], listener=loop)
        await use_schema_registry(settings.schema_registry_url)
        await producer.start()
        await consumer.start()
        return cls(settings, pool, producer, consumer, transport, loop)

    def readiness_checks(self):
        return {
            "postgres": functools.partial(database_reachable, self.pool),
            "kafka": functools.partial(kafka_reachable, self.producer),
            "consumer": self.loop.caught_up,
        }

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.transport.close()
        await self.producer.stop()
        await self.pool.close()
