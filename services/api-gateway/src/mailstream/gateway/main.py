"""Gateway process: the HTTP API (uvicorn) and the SMTP submission server over one set of
dependencies (bootstrap.py).

Graceful stop (SIGTERM): the servers stop taking requests, the sends in hand are finished,
then the connections close.
"""

from __future__ import annotations

import asyncio

import uvicorn

from mailstream.core.logs import configure_logging
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.gateway.app import create_app
from mailstream.gateway.bootstrap import Gateway
from mailstream.gateway.fast_paths import FastPaths
from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.smtp.server import start_smtp_server


async def main(settings: GatewaySettings) -> None:
    log = configure_logging("gateway", settings.log_level, send_log=settings.send_log)
    log.info("starting", extra={"fields": settings.redacted()})
    stop = stop_event()
    gateway = await Gateway.start(settings, stop)
    server = uvicorn.Server(
        uvicorn.Config(
            FastPaths(create_app(gateway.deps), gateway.deps),
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
    smtp = await start_smtp_server(settings, pool=gateway.deps.pool, acceptor=gateway.deps.acceptor)
    await stop.wait()
    smtp.close()
    server.should_exit = True
    await serving
    await smtp.wait_closed()
    await gateway.stop_all()
    log.info("stopped")


def run() -> None:
    run_loop(main(GatewaySettings.from_env()))
