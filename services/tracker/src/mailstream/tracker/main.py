"""Tracker process: the tracking HTTP endpoints (with /healthz, /readyz, /metrics) on its port,
the inbound SMTP address on its own (feedback-loop reports and DSNs to return paths), and the
batch loop over its topics.

Graceful stop (SIGTERM): the loop finishes and commits the batch in hand, then everything stops.
"""

from __future__ import annotations

from mailstream.core.logs import configure_logging
from mailstream.core.ops_http import ops_app, serve
from mailstream.core.runtime import run as run_loop
from mailstream.core.runtime import stop_event
from mailstream.tracker import web
from mailstream.tracker.adapters.smtp_intake import InboundHandler, serve_smtp
from mailstream.tracker.bootstrap import Tracker
from mailstream.tracker.feedback_auth import split_list
from mailstream.tracker.settings import TrackerSettings


async def main(settings: TrackerSettings) -> None:
    log = configure_logging("tracker", settings.log_level, send_log=settings.send_log)
    log.info("starting", extra={"fields": settings.redacted()})
    stop = stop_event()
    tracker = await Tracker.start(settings)
    http = ops_app(tracker.readiness_checks())
    http.add_routes(web.routes(tracker.tracking))
    runner = await serve(http, settings.http_host, settings.tracker_http_port)
    intake = None
    if settings.feedback_smtp_port:
        try:
            handler = InboundHandler(
                take_arf=tracker.tracking.take_arf,
                take_dsn=tracker.late_bounces.take,
                return_paths=tracker.return_paths,
                report_sources=split_list(settings.feedback_smtp_sources),
            )
            intake = await serve_smtp(handler, settings.http_host, settings.feedback_smtp_port)
        except OSError:  # the HTTP intake still takes reports; say so loudly and serve tracking anyway
            log.exception("inbound SMTP (feedback, late bounces) NOT started on port %d", settings.feedback_smtp_port)
    try:
        await tracker.loop.run(stop)
    finally:
        if intake is not None:
            intake.close()
        await runner.cleanup()
        await tracker.stop()
    log.info("stopped")


def run() -> None:
    run_loop(main(TrackerSettings.from_env()))
