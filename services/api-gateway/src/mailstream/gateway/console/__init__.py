"""The admin console (issue 17): server-rendered pages under /console, signed in per account user."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import Response

from mailstream.gateway.console.auth import ConsoleAuth
from mailstream.gateway.console.pages import STATIC, static_file
from mailstream.gateway.console.routes import router


def mount(app: FastAPI) -> None:
    """Serves the console on `app` (whose state.deps holds the pool), with the settings of the
    environment (MAILSTREAM_CONSOLE_*, and the SMTP AUTH throttle's window for failed sign-ins)."""
    from mailstream.gateway.settings import GatewaySettings

    settings = GatewaySettings.from_env()
    app.state.console_auth = ConsoleAuth(
        app.state.deps.pool,
        session_s=settings.console_session_s,
        failure_window_s=settings.smtp_auth_failure_window,
    )
    app.state.console_cookie_secure = settings.console_cookie_secure
    app.include_router(router)

    @app.get("/console/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        if name not in STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(static_file(name), media_type=STATIC[name], headers={"Cache-Control": "max-age=3600"})
