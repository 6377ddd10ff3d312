"""Sender process: the batch loop over email.rendered and its retry tiers, and the ops endpoints.

Graceful stop (SIGTERM): the loop stops fetching, finishes the batch in hand (in-flight SMTP
transactions complete), commits it, then connections are closed with QUIT.
"""

from __future__ import annotations

from mailstream.core.logs import configure_logging
from mailstream.core.ops_http import ops_app, serve
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.sender.bootstrap import Sender
from mailstream.sender.settings import SenderSettings


async def main(settings: SenderSettings) -> None:
    log = configure_logging("sender", settings.log_level, send_log=settings.send_log)
    log.info("starting", extra={"fields": settings.redacted()})
    stop = stop_event()
    sender = await Sender.start(settings)
    ops = await serve(ops_app(sender.readiness_checks()), settings.http_host, settings.sender_ops_port)
    try:
        await sender.loop.run(stop)
    finally:
        await ops.cleanup()
        await sender.stop()
    log.info("stopped")


def run() -> None:
    run_loop(main(SenderSettings.from_env()))
