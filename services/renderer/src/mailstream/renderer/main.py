"""Renderer process: the Faust worker plus the ops endpoints."""

from __future__ import annotations

from mailstream.core.db import database_reachable
from mailstream.core.faust_runtime import ServiceSetup, run_worker
from mailstream.renderer import bootstrap
from mailstream.renderer.app import app
from mailstream.renderer.settings import RendererSettings


def run() -> None:
    settings = RendererSettings.from_env()

    async def start():
        deps = await bootstrap.start(settings)
        return ServiceSetup(checks={"postgres": lambda: database_reachable(deps.pool)})

    run_worker(
        app, settings, service="renderer", ops_host=settings.http_host, ops_port=settings.renderer_ops_port, start=start
    )
