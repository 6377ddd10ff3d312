"""Actions behind a confirmation page (token reset and delete, removing a suppression): each is
one declaration, served as a GET page and a CSRF-checked POST."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from mailstream.gateway.console.auth import Session
from mailstream.gateway.console.pages import render_page
from mailstream.gateway.console.web import User, checked_form, router
from mailstream.gateway.errors import ApiError

Subject = Callable[[Request, Session], Awaitable[dict[str, Any]]]
Act = Callable[[Request, Session, dict[str, Any], dict[str, str]], Awaitable[Response]]


@dataclass(frozen=True)
class Confirmation:
    """An action behind a confirmation page: GET shows the page (plain HTML, readable without
    JavaScript) naming the consequence, POST does the action once the form's CSRF token is the
    session's. With a `note` label the page asks for a required note; the action's 400 (e.g. a
    blank note) shows the page again with the message."""

    path: str  # under /console, with its path parameters
    subject: Subject  # what the page names, from the path (raises 404 for another account's object)
    act: Act  # (request, session, subject, form fields) -> the answer
    consequence: str  # templates/consequences/<this>: what the action does, in words
    title: str  # formatted with the subject's fields
    button: str
    cancel: str
    note: str = ""


def confirmation(c: Confirmation) -> None:
    """Serve c's page and its action."""

    def page(request: Request, subject: dict[str, Any], *, status: int = 200, note: str = "", error: str = ""):
        action = "/console" + c.path.format(**{k: quote(v, safe="") for k, v in request.path_params.items()})
        return render_page(
            request,
            "confirm.html",
            status=status,
            title=c.title.format(**subject),
            subject=subject,
            consequence=f"consequences/{c.consequence}",
            action=action,
            button=c.button.format(**subject),
            cancel=c.cancel,
            note_label=c.note,
            note=note,
            error=error,
        )

    async def confirm(request: Request, session: User) -> Response:
        return page(request, await c.subject(request, session))

    async def confirmed(request: Request, session: User) -> Response:
        fields = await checked_form(request, session)
        subject = await c.subject(request, session)
        try:
            return await c.act(request, session, subject, fields)
        except ApiError as exc:
            if exc.status != 400 or not c.note:
                raise
            return page(request, subject, status=400, note=fields.get("note", ""), error=exc.message)

    router.add_api_route(c.path, confirm, methods=["GET"], response_class=HTMLResponse)
    router.add_api_route(c.path, confirmed, methods=["POST"], response_class=HTMLResponse)
