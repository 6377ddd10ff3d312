"""Gateway process: settings, migrations, Kafka producer, PostgreSQL pool, HTTP server."""

from __future__ import annotations

import asyncio

import uvicorn

from mailstream.core.db import create_pool
from mailstream.core.kafka import reliable_producer
from mailstream.core.logs import configure_logging
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.gateway.app import Dependencies, create_app
from mailstream.gateway.settings import GatewaySettings


async def main(settings: GatewaySettings) -> None:
    log = configure_logging("gateway", settings.log_level)
    log.info("starting", extra={"fields": settings.redacted()})
    pool = await create_pool(settings.database_url, max_size=20)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
    producer = reliable_producer(settings.kafka_bootstrap, client_id="mailstream-gateway")
    await producer.start()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Dependencies(pool=pool, producer=producer)),
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
    stop = stop_event()
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving
    await producer.stop()
    await pool.close()
    log.info("stopped")


def run() -> None:
    run_loop(main(GatewaySettings.from_env()))
