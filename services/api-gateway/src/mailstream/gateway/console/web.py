"""The console's plumbing: its router, whose routes turn the API's errors into pages, the signed-in
user of a page, the POSTed form with its CSRF check, and the cookie flags."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

from mailstream.gateway.console import auth as console_auth
from mailstream.gateway.console.auth import SESSION_COOKIE, Session, cookie_flags, same_token
from mailstream.gateway.console.pages import render_page
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.errors import ApiError

MAX_FORM_BYTES = 2_500_000  # an email's HTML (2 MB at most) and the other fields


class NotSignedIn(Exception):
    pass


class CsrfFailed(Exception):
    pass


class ConsoleRoute(APIRoute):
    """Turns the API's errors into console pages: not signed in -> the sign-in page, a bad CSRF
    token -> 403, ApiError -> a page with its status and message (404 for another account's object)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except NotSignedIn:
                return RedirectResponse(f"/console/login?next={quote(request.url.path)}", status_code=303)
            except CsrfFailed:
                return render_page(request, "error.html", status=403, title="Form expired", message=CSRF_MESSAGE)
            except RequestValidationError:
                return render_page(request, "error.html", status=404, title="Not found", message="No such page.")
            except ApiError as exc:
                title = "Not found" if exc.status == 404 else "Error"
                return render_page(request, "error.html", status=exc.status, title=title, message=exc.message)

        return answer


CSRF_MESSAGE = "This form has expired or did not come from the console. Go back, reload the page and try again."
router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def deps_of(request: Request) -> Dependencies:
    return request.app.state.deps


def auth_of(request: Request) -> console_auth.ConsoleAuth:
    return request.app.state.console_auth


async def signed_in(request: Request) -> Session:
    session = await auth_of(request).session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise NotSignedIn
    request.state.session = session
    return session


User = Annotated[Session, Depends(signed_in)]


async def form_fields(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ApiError(413, "VALIDATION_ERROR", "The form is too large")
    return {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}


async def checked_form(request: Request, session: Session) -> dict[str, str]:
    """The POSTed fields, once their CSRF token is the session's."""
    fields = await form_fields(request)
    if not same_token(session.csrf_token, fields.get("csrf")):
        raise CsrfFailed
    return fields


def see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto", "") == "https"


def flags(request: Request, max_age: int | None) -> dict[str, Any]:
    return cookie_flags(https=is_https(request), always_secure=request.app.state.console_cookie_secure, max_age=max_age)


def validation_messages(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
