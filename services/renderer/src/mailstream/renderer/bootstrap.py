"""Composition root: the renderer's dependencies, built and started in `start()`, stopped in
`stop()`; nothing at import time and no module globals."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer

from mailstream.core.consumer import BatchLoop, batch_consumer
from mailstream.core.db import create_pool, database_reachable
from mailstream.core.kafka import ReliableProducer, kafka_reachable, reliable_producer
from mailstream.core.schema_registry import use_schema_registry
from mailstream.renderer.adapters.emails import EmailVersions
from mailstream.renderer.adapters.publisher import Publisher
from mailstream.renderer.adapters.recipients import AccountPoolAssignments, Recipients
from mailstream.renderer.intake import render_batch
from mailstream.renderer.pools import load_pools
from mailstream.renderer.ports import Ports
from mailstream.renderer.return_path import ReturnPath
from mailstream.renderer.settings import RendererSettings
from mailstream.renderer.tracking import Tracker
from mailstream.schemas.links import LinkSigner
from mailstream.schemas.return_paths import ReturnPaths
from mailstream.schemas.topics import SEND_REQUESTED

GROUP_ID = "mailstream-renderer"  # the Faust app's group: a deployment keeps its committed offsets


def build_ports(settings: RendererSettings, pool: asyncpg.Pool, *, pools, tracker: Tracker) -> Ports:
    return_path = ReturnPath(ReturnPaths.from_setting(settings.link_signing_keys), settings.return_path_label)
    return Ports(
        emails=EmailVersions(pool),
        recipients=Recipients(pool),
        account_pools=AccountPoolAssignments(pool),
        pools=pools,
        tracker=tracker,
        return_path=return_path,
    )


@dataclass
class Renderer:
    settings: RendererSettings
    pool: asyncpg.Pool
    producer: ReliableProducer
    consumer: AIOKafkaConsumer
    loop: BatchLoop

    @classmethod
    async def start(cls, settings: RendererSettings) -> Renderer:
        # The policy and the link keys are read before anything connects: a bad one stops the start.
        pools = load_pools(settings.policy_dir)
        tracker = Tracker(LinkSigner.from_setting(settings.link_signing_keys), settings.tracking_base_url)
        pool = await create_pool(settings.database_url, min_size=1, max_size=4)
        ports = build_ports(settings, pool, pools=pools, tracker=tracker)
        producer = reliable_producer(settings.kafka_bootstrap, client_id="mailstream-renderer")
        consumer = batch_consumer(
            settings.kafka_bootstrap,
            group_id=GROUP_ID,
            client_id="mailstream-renderer",
            fetch_min_bytes=settings.renderer_fetch_min_bytes,
            fetch_max_wait_ms=settings.renderer_fetch_max_wait_ms,
        )
        handle = functools.partial(render_batch, ports=ports, publish=Publisher(producer).publish)
        loop = BatchLoop(consumer, handle=handle, name="renderer", max_records=settings.renderer_max_records)
        consumer.subscribe([SEND_REQUESTED.name], listener=loop)
        await use_schema_registry(settings.schema_registry_url)
        await producer.start()
        await consumer.start()
        return cls(settings, pool, producer, consumer, loop)

    def readiness_checks(self):
        return {
            "postgres": functools.partial(database_reachable, self.pool),
            "kafka": functools.partial(kafka_reachable, self.producer),
            "consumer": self.loop.caught_up,
        }

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.producer.stop()
        await self.pool.close()
