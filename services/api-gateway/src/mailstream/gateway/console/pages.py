"""The console's templates (Jinja2, autoescaped) and its static files (served from the package)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

HERE = Path(__file__).resolve().parent
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
NAV = (
    ("/console/emails", "Emails"),
    ("/console/tokens", "SMTP tokens"),
    ("/console/domains", "Domains"),
    ("/console/sends", "Send statuses"),
    ("/console/suppressions", "Suppressions"),
)
SECURITY_HEADERS = {
    # no inline scripts or styles, nothing from elsewhere; the preview iframe is sandboxed (srcdoc)
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: https:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
        "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@functools.cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def static_file(name: str) -> bytes:
    return (HERE / "static" / name).read_bytes()


def render_page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    session = getattr(request.state, "session", None)
    html = (
        environment()
        .get_template(template)
        .render(
            session=session,
            csrf=session.csrf_token if session else "",
            nav=NAV,
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
