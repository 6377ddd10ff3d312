"""Tracker process: the Faust worker, with the tracking HTTP server on its port and the
feedback-loop SMTP intake on its own."""

from __future__ import annotations

import logging

from mailstream.core.db import database_reachable
from mailstream.core.faust_runtime import ServiceSetup, run_worker
from mailstream.core.kafka import kafka_reachable
from mailstream.tracker import bootstrap, web
from mailstream.tracker.adapters.smtp_intake import FeedbackHandler, serve_smtp
from mailstream.tracker.app import app
from mailstream.tracker.settings import TrackerSettings

log = logging.getLogger(__name__)


def run() -> None:
    settings = TrackerSettings.from_env()

    async def start():
        deps = await bootstrap.start(settings)
        tracking = web.Tracking(deps)
        if settings.feedback_smtp_port:
            try:
                intake = FeedbackHandler(take=tracking.take_arf)
                await serve_smtp(intake, settings.http_host, settings.feedback_smtp_port)
            except OSError:  # the HTTP intake still takes reports; say so loudly and serve tracking anyway
                log.exception("feedback SMTP intake NOT started on port %d", settings.feedback_smtp_port)
        return ServiceSetup(
            checks={
                "postgres": lambda: database_reachable(deps.pool),
                "kafka_producer": lambda: kafka_reachable(deps.publisher.producer),
            },
            routes=web.routes(deps),
        )

    run_worker(
        app, settings, service="tracker", ops_host=settings.http_host, ops_port=settings.tracker_http_port, start=start
    )
