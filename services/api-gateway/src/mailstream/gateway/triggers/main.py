"""Trigger process: the rules' consumers (runner.py), the accept path of the single-send API
(handlers.Acceptor over the gateway's tables and a reliable producer), the ops endpoints.

Graceful stop (SIGTERM): every rule's loop finishes and commits the batch in hand, then stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools

from mailstream.core.db import create_pool, database_reachable
from mailstream.core.logs import configure_logging
from mailstream.core.ops_http import ops_app, serve
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.core.schema_registry import use_schema_registry
from mailstream.gateway.adapters.accepting import PgAcceptStore
from mailstream.gateway.adapters.invalidation import listen
from mailstream.gateway.adapters.schema_registry import SchemaRegistry
from mailstream.gateway.bootstrap import migrate_when_reachable
from mailstream.gateway.caches import CHANNEL, Caches
from mailstream.gateway.handlers import Acceptor
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.triggers.allowed import Allowed
from mailstream.gateway.triggers.runner import Runner
from mailstream.gateway.triggers.settings import TriggerSettings
from mailstream.schemas import RecordDeadLettered, encode
from mailstream.schemas.topics import DEAD_LETTER


async def main(settings: TriggerSettings) -> None:
    log = configure_logging("gateway-triggers", settings.log_level)
    log.info("starting", extra={"fields": settings.redacted()})
    stop = stop_event()
    pool = await create_pool(settings.database_url, min_size=0, max_size=settings.trigger_db_pool_size)
    await use_schema_registry(settings.schema_registry_url)
    kafka = KafkaLink(bootstrap=settings.kafka_bootstrap, client_id="mailstream-gateway-triggers")
    caches = Caches(api_key_ttl_s=0)
    acceptor = Acceptor(PgAcceptStore(pool), kafka.send_all, caches, max_batch=settings.accept_max_batch)
    allowed = Allowed.of(settings)  # a malformed registry prefix stops start-up
    schemas = SchemaRegistry(allowed=allowed.registry_allowed)

    async def publish_dead(dead: list[RecordDeadLettered]) -> None:
        await kafka.send_all([(DEAD_LETTER.name, d.key, encode(d)) for d in dead])

    runner = Runner(settings, pool, send=acceptor.send, publish_dead=publish_dead, schemas=schemas, allowed=allowed)
    background = [
        asyncio.create_task(kafka.keep_connected(stop), name="kafka"),
        asyncio.create_task(listen(settings.database_url, CHANNEL, caches.forget, caches.set_listening, stop)),
    ]
    ops = await serve(
        ops_app({"postgres": functools.partial(database_reachable, pool), "kafka": kafka.reachable}),
        settings.http_host,
        settings.trigger_ops_port,
    )
    try:
        await migrate_when_reachable(pool)
        while kafka.producer is None and not stop.is_set():  # the rules start once sends can be published
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
        await runner.run(stop)
    finally:
        await acceptor.drain()
        await ops.cleanup()
        await asyncio.gather(*background, return_exceptions=True)
        await schemas.close()
        await kafka.close()
        await pool.close()
    log.info("stopped")


def run() -> None:
    run_loop(main(TriggerSettings.from_env()))
