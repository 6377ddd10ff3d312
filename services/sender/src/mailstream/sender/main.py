"""Sender process: consumer, producer, delivery records, SMTP transport, ops endpoints."""

from __future__ import annotations

from mailstream.core.db import create_pool, database_reachable
from mailstream.core.kafka import kafka_reachable, manual_commit_consumer, reliable_producer
from mailstream.core.logs import configure_logging
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.core.ops_http import ops_app, serve
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.schemas.topics import DELIVERY, RENDERED
from mailstream.sender.adapters.deliveries import DeliveryRecords
from mailstream.sender.adapters.smtp import SmtpTransport
from mailstream.sender.consumer import consume
from mailstream.sender.pipeline import Pipeline
from mailstream.sender.settings import SenderSettings


def parse_relay(value: str) -> tuple[str, int] | None:
    if not value:
        return None
    host, _, port = value.rpartition(":")
    return (host, int(port)) if host else (value, 25)


async def main(settings: SenderSettings) -> None:
    log = configure_logging("sender", settings.log_level)
    log.info("starting", extra={"fields": settings.redacted()})
    stop = stop_event()
    pool = await create_pool(settings.database_url)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "sender", migrations_of("mailstream.sender"))
    producer = reliable_producer(settings.kafka_bootstrap, client_id="mailstream-sender")
    consumer = manual_commit_consumer(
        settings.kafka_bootstrap, group_id="mailstream-sender", topics=[RENDERED.name], client_id="mailstream-sender"
    )
    transport = SmtpTransport(helo_name=settings.sender_helo_name, timeout=settings.sender_smtp_timeout)

    async def publish(message_id: str, event: bytes) -> None:
        await producer.send_and_wait(DELIVERY.name, event, key=message_id.encode())

    pipeline = Pipeline(
        transport=transport, records=DeliveryRecords(pool), publish=publish, relay=parse_relay(settings.sender_relay)
    )

    async with producer, consumer:
        checks = {"postgres": lambda: database_reachable(pool), "kafka": lambda: kafka_reachable(producer)}
        ops = await serve(ops_app(checks), settings.http_host, settings.sender_ops_port)
        try:
            await consume(consumer, producer, pipeline, stop)
        finally:
            await ops.cleanup()
            await transport.close()
    await pool.close()
    log.info("stopped")


def run() -> None:
    run_loop(main(SenderSettings.from_env()))
