"""Fan-out process: expands one-off sends to many contacts into one send per recipient.

A OneOffSendRequested on email.one-off.requested (consumer group mailstream-fanout) wakes it;
the work itself is driven by the database (one_off_sends: state and cursor), so nothing is lost
when a record was consumed and the process died, and scheduled sends start when their sendAt
comes (polled every MAILSTREAM_FANOUT_POLL_INTERVAL_S). Batches run one after another, each in
its own transaction (batch.py); replicas share the work a batch at a time (SKIP LOCKED).

Graceful stop (SIGTERM): the batch in hand is finished and committed, then the process stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import asyncpg
from prometheus_client import Counter, Histogram

from mailstream.core.consumer import Batches, BatchLoop, batch_consumer, next_offsets
from mailstream.core.db import DATABASE_DOWN, create_pool, database_reachable
from mailstream.core.kafka import ReliableProducer, kafka_reachable, reliable_producer
from mailstream.core.logs import configure_logging
from mailstream.core.ops_http import ops_app, serve
from mailstream.core.retry import is_transient
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.core.schema_registry import use_schema_registry
from mailstream.gateway.fanout.batch import fan_out_batch
from mailstream.gateway.settings import GatewaySettings
from mailstream.schemas.topics import ONE_OFF_SEND_REQUESTED

log = logging.getLogger("mailstream.gateway.fanout")
GROUP_ID = "mailstream-fanout"
RECIPIENTS = Counter("mailstream_fanout_recipients_total", "Recipients of one-off sends fanned out", ["result"])
BATCH_SECONDS = Histogram(
    "mailstream_fanout_batch_seconds",
    "Time to fan out and commit one batch of a one-off send",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15),
)


async def run_fan_out(
    pool: asyncpg.Pool,
    producer: ReliableProducer,
    wake: asyncio.Event,
    stop: asyncio.Event,
    *,
    settings: GatewaySettings,
) -> None:
    """Fans out batches while any one-off send is due; otherwise waits for a record or the poll."""
    while not stop.is_set():
        try:
            with BATCH_SECONDS.time():
                done = await fan_out_batch(
                    pool,
                    producer.send_all,
                    batch_size=settings.fanout_batch_size,
                    require_sending_domain=settings.require_sending_domain,
                )
        except Exception as exc:
            if is_transient(exc) or isinstance(exc, DATABASE_DOWN):
                log.warning("fan-out batch failed, retrying", extra={"fields": {"error": repr(exc)}})
            else:
                log.exception("fan-out batch crashed, retrying")
            done = None
            await _wait(stop, max(settings.fanout_poll_interval_s, 1.0))
            continue
        if done is not None:
            RECIPIENTS.labels("accepted").inc(done.accepted)
            RECIPIENTS.labels("skipped").inc(done.skipped)
            if done.finished:
                log.info("one-off send fanned out", extra={"fields": {"one_off_send_id": done.one_off_send_id}})
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(wake, stop), settings.fanout_poll_interval_s)
        wake.clear()


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def main(settings: GatewaySettings) -> None:
    configure_logging("fanout", settings.log_level)
    log.info("starting", extra={"fields": settings.redacted()})
    stop = stop_event()
    wake = asyncio.Event()
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    producer = reliable_producer(settings.kafka_bootstrap, client_id="mailstream-fanout")
    consumer = batch_consumer(
        settings.kafka_bootstrap,
        group_id=GROUP_ID,
        client_id="mailstream-fanout",
        fetch_min_bytes=1,
        fetch_max_wait_ms=200,
    )

    async def woken(batches: Batches):
        wake.set()  # the record only says which send is due; the database says what is left of it
        return next_offsets(batches)

    loop = BatchLoop(consumer, handle=woken, name="fanout")
    consumer.subscribe([ONE_OFF_SEND_REQUESTED.name], listener=loop)
    await use_schema_registry(settings.schema_registry_url)
    await producer.start()
    await consumer.start()
    checks = {
        "postgres": functools.partial(database_reachable, pool),
        "kafka": functools.partial(kafka_reachable, producer),
        "consumer": loop.caught_up,
    }
    ops = await serve(ops_app(checks), settings.http_host, settings.fanout_port)
    tasks = [
        asyncio.create_task(loop.run(stop), name="consumer"),
        asyncio.create_task(run_fan_out(pool, producer, wake, stop, settings=settings), name="fan-out"),
    ]
    try:
        await stop.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await ops.cleanup()
        await consumer.stop()
        await producer.stop()
        await pool.close()
    log.info("stopped")


def run() -> None:
    run_loop(main(GatewaySettings.from_env()))
