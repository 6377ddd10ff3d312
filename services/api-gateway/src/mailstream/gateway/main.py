"""Gateway process: settings, migrations, Kafka producer, PostgreSQL pool, scheduler, HTTP server.

The HTTP server starts even when PostgreSQL or Kafka is unreachable: requests then answer 503
and /readyz says which is down, while the connections are retried in the background.
"""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from mailstream.core.db import create_pool
from mailstream.core.logs import configure_logging
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.gateway.app import create_app
from mailstream.gateway.deps import Dependencies, KeyCache
from mailstream.gateway.errors import DATABASE_DOWN
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.scheduler import run_scheduler
from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.smtp.server import start_smtp_server


async def migrate_when_reachable(pool, stop: asyncio.Event, log: logging.Logger) -> None:
    while not stop.is_set():
        try:
            async with pool.acquire() as conn:
                await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
            return
        except DATABASE_DOWN as exc:
            log.warning("database not reachable, retrying migrations", extra={"fields": {"error": repr(exc)}})
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass


async def main(settings: GatewaySettings) -> None:
    log = configure_logging("gateway", settings.log_level)
    log.info("starting", extra={"fields": settings.redacted()})
    stop = stop_event()
    # min_size=0: starting needs no connection, so the gateway serves 503s while PostgreSQL is down.
    pool = await create_pool(settings.database_url, min_size=0, max_size=settings.db_pool_size)
    kafka = KafkaLink(bootstrap=settings.kafka_bootstrap)
    background = [asyncio.create_task(kafka.keep_connected(stop))]
    migrating = asyncio.create_task(migrate_when_reachable(pool, stop, log))
    await asyncio.wait([migrating], timeout=5)  # serve (503s) meanwhile if the database is down
    background.append(migrating)
    if settings.scheduler_enabled:
        background.append(
            asyncio.create_task(run_scheduler(pool, kafka.send_many, stop, interval_s=settings.scheduler_interval_s))
        )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(
                Dependencies(
                    pool=pool,
                    kafka=kafka,
                    keys=KeyCache(ttl_s=settings.api_key_cache_s),
                    require_sending_domain=settings.require_sending_domain,
                )
            ),
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            access_log=False,
            loop="none",
            http="httptools",
            lifespan="off",
        )
    )
    server.install_signal_handlers = lambda: None  # our stop event handles SIGTERM
    serving = asyncio.create_task(server.serve())
    smtp = await start_smtp_server(settings, pool=pool, send_many=kafka.send_many)  # SMTP submission (issue 7)
    await stop.wait()
    smtp.close()
    server.should_exit = True
    await serving
    await smtp.wait_closed()
    await asyncio.gather(*background, return_exceptions=True)
    await kafka.close()
    await pool.close()
    log.info("stopped")


def run() -> None:
    run_loop(main(GatewaySettings.from_env()))
