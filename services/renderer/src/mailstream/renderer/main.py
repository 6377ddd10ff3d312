"""Renderer process: settings, the batch loop over email.send.requested, the ops endpoints.

Graceful stop (SIGTERM): the loop finishes and commits the batch in hand, then stops.
"""

from __future__ import annotations

from mailstream.core.logs import configure_logging
from mailstream.core.ops_http import ops_app, serve
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.renderer.bootstrap import Renderer
from mailstream.renderer.settings import RendererSettings


async def main(settings: RendererSettings) -> None:
    log = configure_logging("renderer", settings.log_level, send_log=settings.send_log)
    log.info("starting", extra={"fields": settings.redacted()})
    stop = stop_event()
    renderer = await Renderer.start(settings)
    ops = await serve(ops_app(renderer.readiness_checks()), settings.http_host, settings.renderer_ops_port)
    try:
        await renderer.loop.run(stop)
    finally:
        await ops.cleanup()
        await renderer.stop()
    log.info("stopped")


def run() -> None:
    run_loop(main(RendererSettings.from_env()))
