"""Composition root: the tracker's dependencies, built and started in `start()`, stopped in
`stop()`; nothing at import time and no module globals."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from dataclasses import dataclass, field
from datetime import timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer

from mailstream.core.consumer import BatchLoop, batch_consumer
from mailstream.core.db import create_pool, database_reachable
from mailstream.core.kafka import ReliableProducer, kafka_reachable, reliable_producer
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.core.schema_registry import use_schema_registry
from mailstream.schemas.bounces import BounceTable
from mailstream.schemas.links import LinkSigner
from mailstream.schemas.return_paths import ReturnPaths
from mailstream.tracker.adapters.links import LinkTargets
from mailstream.tracker.adapters.messages import MessageAnnotations, MessageLookups
from mailstream.tracker.adapters.publisher import Publisher
from mailstream.tracker.adapters.recent import RecentDeliveries
from mailstream.tracker.adapters.sns_certs import SnsCertificates
from mailstream.tracker.feedback_auth import split_list
from mailstream.tracker.intake import TOPICS, TrackerIntake
from mailstream.tracker.late_bounces import LateBounces
from mailstream.tracker.settings import TrackerSettings
from mailstream.tracker.web import FeedbackCredentials, Tracking

GROUP_ID = "mailstream-tracker"


@dataclass
class Tracker:
    settings: TrackerSettings
    pool: asyncpg.Pool
    producer: ReliableProducer
    consumer: AIOKafkaConsumer
    loop: BatchLoop
    tracking: Tracking
    late_bounces: LateBounces
    return_paths: ReturnPaths
    background: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: TrackerSettings) -> Tracker:
        signer = LinkSigner.from_setting(settings.link_signing_keys)  # a malformed key stops start-up
        return_paths = ReturnPaths.from_setting(settings.link_signing_keys)
        bounce_table = BounceTable.load(settings.policy_dir)  # a malformed bounces.toml too
        pool = await create_pool(settings.database_url, min_size=1, max_size=8)
        async with pool.acquire() as conn:
            await apply_migrations(conn, "tracker", migrations_of("mailstream.tracker"))
        # linger: the tracking endpoints' events from concurrent requests go in one produce request
        producer = reliable_producer(settings.kafka_bootstrap, client_id="mailstream-tracker", linger_ms=5)
        publisher = Publisher(producer=producer)
        consumer = batch_consumer(
            settings.kafka_bootstrap,
            group_id=GROUP_ID,
            client_id="mailstream-tracker",
            fetch_min_bytes=settings.tracker_fetch_min_bytes,
            fetch_max_wait_ms=settings.tracker_fetch_max_wait_ms,
        )
        intake = TrackerIntake(pool=pool, publish_dead_letters=publisher.dead_letters, seek=consumer.seek)
        loop = BatchLoop(
            consumer,
            handle=intake,
            name="tracker",
            max_records=settings.tracker_max_records,
            on_assigned=intake.on_assigned,
        )
        consumer.subscribe(list(TOPICS), listener=loop)
        recent = RecentDeliveries()
        tracking = Tracking(
            signer=signer,
            targets=LinkTargets(pool),
            recent=recent,
            publisher=publisher,
            messages=MessageLookups(pool),
            annotations=MessageAnnotations(pool),
            scan_window=timedelta(seconds=settings.link_scanner_window_s),
            feedback=FeedbackCredentials(
                arf_secret=settings.feedback_arf_secret,
                sns_topic_arns=split_list(settings.feedback_sns_topic_arns),
                sns_cert_url_prefixes=split_list(settings.feedback_sns_cert_url_prefixes),
                certificates=SnsCertificates(),
            ),
        )
        late_bounces = LateBounces(table=bounce_table, messages=tracking.messages, publish=publisher.delivery)
        await use_schema_registry(settings.schema_registry_url)
        await producer.start()
        await consumer.start()
        follower = asyncio.create_task(recent.follow(settings.kafka_bootstrap), name="recent-deliveries")
        return cls(settings, pool, producer, consumer, loop, tracking, late_bounces, return_paths, [follower])

    def readiness_checks(self):
        return {
            "postgres": functools.partial(database_reachable, self.pool),
            "kafka": functools.partial(kafka_reachable, self.producer),
            "consumer": self.loop.caught_up,
        }

    async def stop(self) -> None:
        for task in self.background:
            task.cancel()
        for task in self.background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.consumer.stop()
        await self.producer.stop()
        await self.pool.close()
