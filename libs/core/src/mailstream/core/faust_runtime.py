"""Running a Faust app as a mailstream service: broker and acks from settings, the
service's dependencies built when the worker starts, and the ops endpoints beside it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiokafka
import faust
import uvloop
from aiohttp import web
from faust import Worker
from faust.transport.drivers import aiokafka as faust_aiokafka

from mailstream.core.logs import configure_logging
from mailstream.core.ops_http import ReadinessCheck, ops_app, serve
from mailstream.core.settings import CommonSettings
from mailstream.core.skipped_records import SKIPPED_AFTER_SECONDS, SkippedRecords
from mailstream.schemas import dead_lettered, encode
from mailstream.schemas.topics import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)


class _BatchFetchingConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        app = self.consumer.app
        consumer._fetch_min_bytes = app.fetch_min_bytes  # read by start(), which builds the fetcher
        consumer._fetch_max_wait_ms = app.fetch_max_wait_ms
        return consumer


class _BatchFetchingConsumer(faust_aiokafka.Consumer):
    _skipped: SkippedRecords | None = None

    def _new_offset(self, tp):
        acked, committed = self._acked[tp], self._committed_offset[tp]
        if committed is None and self.app.rebalancing:
            # Faust forgets the committed offsets when partitions are revoked, then waits for the
            # events in flight; their acks would commit from wherever they start, past events
            # dropped from the agents' buffers. Those are handled again after the rebalance.
            return None
        if acked and committed is not None and min(acked) > committed:
            # faust-streaming 0.15.3 (transport/consumer.py, _new_offset) commits the first run of
            # consecutive acknowledged offsets when it starts at most one past the committed offset;
            # but the committed offset is the next one to process, so with several actors an event
            # still in flight (committed) was skipped when the one after it (committed + 1) was
            # acknowledged first, and lost on kill -9. A commit must start exactly at the committed
            # offset.
            self._seek_back_if_skipped(tp, committed, min(acked))
            return None
        return super()._new_offset(tp)

    async def _add_gap(self, tp, offset_from: int, offset_to: int) -> None:
        # Faust counts offsets missing between two fetched records as handled (a compacted or
        # transactional topic has such holes) and commits past them. mailstream's topics have
        # neither, so missing offsets are records this worker skipped (seen around restarts of
        # the worker or the broker); counted as handled they were lost for good. They hold the
        # commit back instead, and _seek_back_if_skipped reads them again.
        log.warning("%s: offsets %d..%d missing between two fetched records", tp, offset_from, offset_to - 1)

    def _seek_back_if_skipped(self, tp, committed: int, first_acked: int) -> None:
        """Records a worker fetched but never handed to its agents hold the commit back forever
        and are never handled: once nothing below the first acknowledged offset has been in
        flight for a while, read the partition again from the committed offset (handling is
        idempotent, and Faust drops nothing it reads after a seek)."""
        if self._skipped is None:
            self._skipped = SkippedRecords(after=SKIPPED_AFTER_SECONDS)
        in_flight = (m.offset for m in list(self._unacked_messages) if m.tp == tp)
        if self._skipped.seen(tp, committed, first_acked, in_flight):
            log.warning(
                "%s: offsets %d..%d were never handled (last read %s); reading again from %d",
                tp,
                committed,
                first_acked - 1,
                self._read_offset.get(tp),
                committed,
            )
            task = asyncio.ensure_future(self.seek(tp, committed))
            task.add_done_callback(self._skipped.forget_task)
            self._skipped.tasks.add(task)

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _BatchFetchingConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _BatchFetchingTransport(faust_aiokafka.Transport):
    Consumer = _BatchFetchingConsumer


class App(faust.App):
    """A Faust app whose fetches return once they have `fetch_min_bytes` or waited
    `fetch_max_wait_ms`. Faust's default answers a fetch as soon as one record is there: a fetch
    per record or two under load, each costing about as much CPU as handling the records
    (measured in the tracker, docs/benchmarks.md). The wait is the most a record waits on a
    quiet stack. Faust exposes neither setting, hence the consumer subclass."""

    def __init__(self, *args, fetch_min_bytes: int, fetch_max_wait_ms: int, **kwargs) -> None:
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_transport(self):
        return _BatchFetchingTransport(self.conf.broker_consumer, self)


def dead_letter_value(event, *, service: str, reason: str) -> bytes:
    """The encoded dead-letter record of a consumed Faust event: where it came from, its key and
    value as they were, and why it could not be processed."""
    msg = event.message
    return encode(
        dead_lettered(
            service=service,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            key=event.key,
            value=event.value,
            reason=reason,
        )
    )


@dataclass
class ServiceSetup:
    """What a service's start-up returns: its readiness checks (Kafka's is added) and any
    HTTP routes it serves beside /healthz, /readyz and /metrics (e.g. the tracker's)."""

    checks: dict[str, ReadinessCheck]
    routes: list[web.RouteDef] = field(default_factory=list)


# Builds the service's dependencies once the worker runs.
StartDependencies = Callable[[], Awaitable[ServiceSetup]]


def run_worker(
    app: faust.App, settings: CommonSettings, *, service: str, ops_host: str, ops_port: int, start: StartDependencies
) -> None:
    configure_logging(service, settings.log_level)
    uvloop.install()  # Faust makes its loop from the policy; uvloop's socket writes are much cheaper
    app.conf.broker = [f"kafka://{hostport}" for hostport in settings.kafka_bootstrap.split(",")]
    app.conf.producer_acks = -1  # all in-sync replicas, as everywhere else
    app.conf.producer_max_request_size = MAX_MESSAGE_BYTES
    app.conf.consumer_max_fetch_size = MAX_MESSAGE_BYTES
    # A process killed without leaving the group holds its partitions until its session times
    # out: 10 s (Faust's default is 60 s) bounds how long a restarted worker waits for them.
    app.conf.broker_session_timeout = 10.0

    @app.task
    async def start_dependencies() -> None:
        setup = await start()

        async def kafka_ready() -> bool:
            # Ready once the tables were first restored from their changelogs: before that the
            # agents do not process anything.
            recovered = app.tables.recovery.completed.is_set()
            return app.producer is not None and app.consumer is not None and recovered

        http = ops_app({**setup.checks, "kafka": kafka_ready})
        http.add_routes(setup.routes)
        await serve(http, ops_host, ops_port)

    Worker(app, loglevel=settings.log_level, quiet=True, override_logging=False).execute_from_commandline()
