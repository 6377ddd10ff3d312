"""Tracker process: the Faust worker, with the tracking HTTP server on its port."""

from __future__ import annotations

from mailstream.core.db import database_reachable
from mailstream.core.faust_runtime import ServiceSetup, run_worker
from mailstream.tracker import bootstrap
from mailstream.tracker.app import app
from mailstream.tracker.settings import TrackerSettings


def run() -> None:
    settings = TrackerSettings.from_env()

    async def start():
        deps = await bootstrap.start(settings)
        return ServiceSetup(checks={"postgres": lambda: database_reachable(deps.pool)})

    run_worker(
        app, settings, service="tracker", ops_host=settings.http_host, ops_port=settings.tracker_http_port, start=start
    )
