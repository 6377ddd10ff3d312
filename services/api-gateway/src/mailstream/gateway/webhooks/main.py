"""Webhook dispatcher process: `python -m mailstream.gateway.webhooks` (docs/webhooks.md).

The intake consumes email.delivery, email.engagement and email.unsubscribe in its own consumer
group (mailstream-webhooks) and queues each event for the account's endpoints that want it in
PostgreSQL, committing a batch's offsets only after that (intake.py). The delivery loop POSTs
the queue (delivery.py), the replay loop re-queues the events of a time range (replay.py), and
delivered events' keys and the delivery log are pruned past their retention. Replicas share the
partitions (the group) and the queue (leases, SKIP LOCKED).

Graceful stop (SIGTERM): the batch in hand is queued and committed, the POSTs in flight finish
and are recorded, then the process stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import asyncpg

from mailstream.core.consumer import BatchLoop, batch_consumer
from mailstream.core.db import DATABASE_DOWN, create_pool, database_reachable
from mailstream.core.logs import configure_logging
from mailstream.core.ops_http import ops_app, serve
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.core.schema_registry import read_with_schema_registry
from mailstream.gateway.adapters import webhooks_store as store
from mailstream.gateway.bootstrap import migrate_when_reachable
from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.webhooks.client import WebhookClient
from mailstream.gateway.webhooks.delivery import Deliveries, DeliveryConfig
from mailstream.gateway.webhooks.intake import handle_batch
from mailstream.gateway.webhooks.replay import SOURCES, Replays
from mailstream.gateway.webhooks.retry import RetrySchedule
from mailstream.gateway.webhooks.url_policy import parse_networks

log = logging.getLogger("mailstream.gateway.webhooks")
GROUP_ID = "mailstream-webhooks"
PRUNE_EVERY_S = 600.0


def client_of(settings: GatewaySettings) -> WebhookClient:
    return WebhookClient(
        allowed=parse_networks(settings.webhook_allowed_networks),  # a malformed one stops start-up
        timeout_s=settings.webhook_timeout_s,
        max_response_bytes=settings.webhook_max_response_bytes,
    )


def delivery_config(settings: GatewaySettings) -> DeliveryConfig:
    return DeliveryConfig(
        schedule=RetrySchedule.parse(settings.webhook_retry_delays),  # a malformed schedule stops start-up
        batch_size=settings.webhook_batch_size,
        max_body_bytes=settings.webhook_max_body_bytes,
        timeout_s=settings.webhook_timeout_s,
        concurrency=settings.webhook_concurrency,
        poll_interval_s=settings.webhook_poll_interval_s,
    )


async def prune_now_and_then(pool: asyncpg.Pool, retention_s: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await store.prune(pool, retention_s)
        except (DATABASE_DOWN, asyncpg.UndefinedTableError) as exc:
            log.warning("pruning the webhook tables: %r", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PRUNE_EVERY_S)


async def main(settings: GatewaySettings) -> None:
    configure_logging("webhooks", settings.log_level)
    log.info("starting", extra={"fields": settings.redacted()})
    config = delivery_config(settings)
    stop = stop_event()
    read_with_schema_registry(settings.schema_registry_url)  # the services may write Confluent's format
    pool = await create_pool(settings.database_url, min_size=1, max_size=max(4, settings.webhook_concurrency // 2))
    client = client_of(settings)
    deliveries = Deliveries(pool, client, config)
    consumer = batch_consumer(
        settings.kafka_bootstrap, group_id=GROUP_ID, client_id="mailstream-webhooks",
        fetch_min_bytes=1, fetch_max_wait_ms=100,
    )  # fmt: skip
    loop = BatchLoop(
        consumer, handle=functools.partial(handle_batch, pool=pool, queued=deliveries.wake.set), name="webhooks"
    )
    consumer.subscribe([t.name for t in SOURCES], listener=loop)
    replays = Replays(pool, bootstrap=settings.kafka_bootstrap, queued=deliveries.wake.set)
    checks = {"postgres": functools.partial(database_reachable, pool), "consumer": loop.caught_up}
    ops = await serve(ops_app(checks), settings.http_host, settings.webhook_ops_port)
    tasks: list[asyncio.Task] = []
    try:
        await migrate_when_reachable(pool)
        await consumer.start()
        tasks = [
            asyncio.create_task(loop.run(stop), name="intake"),
            asyncio.create_task(deliveries.run(stop), name="deliveries"),
            asyncio.create_task(replays.run(stop), name="replays"),
            asyncio.create_task(prune_now_and_then(pool, settings.webhook_log_retention_s, stop), name="prune"),
        ]
        await stop.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await ops.cleanup()
        await consumer.stop()
        await client.close()
        await pool.close()
    log.info("stopped")


def run() -> None:
    run_loop(main(GatewaySettings.from_env()))
