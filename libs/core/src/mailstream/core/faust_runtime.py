"""Running a Faust app as a mailstream service: broker and acks from settings, the
service's dependencies built when the worker starts, and the ops endpoints beside it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import faust
from faust import Worker

from mailstream.core.logs import configure_logging
from mailstream.core.ops_http import ReadinessCheck, ops_app, serve
from mailstream.core.settings import CommonSettings

# Builds the service's dependencies; returns its readiness checks (besides Kafka's).
StartDependencies = Callable[[], Awaitable[dict[str, ReadinessCheck]]]


def run_worker(
    app: faust.App, settings: CommonSettings, *, service: str, ops_host: str, ops_port: int, start: StartDependencies
) -> None:
    configure_logging(service, settings.log_level)
    app.conf.broker = [f"kafka://{hostport}" for hostport in settings.kafka_bootstrap.split(",")]
    app.conf.producer_acks = -1  # all in-sync replicas, as everywhere else

    @app.task
    async def start_dependencies() -> None:
        checks = await start()

        async def kafka_ready() -> bool:
            return app.producer is not None and app.consumer is not None

        await serve(ops_app({**checks, "kafka": kafka_ready}), ops_host, ops_port)

    Worker(app, loglevel=settings.log_level, quiet=True).execute_from_commandline()
