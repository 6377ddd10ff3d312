"""The console's pages: plain HTML forms (POST, then a redirect or the answer page), each action
calling the same functions as the JSON API's handlers (routes/*), so the rules and messages are
the API's. Every page needs a signed-in user and shows only that user's account: another
account's object answers 404, as in the API."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError

from mailstream.gateway.adapters import tokens_store
from mailstream.gateway.adapters.accepting import PgAcceptStore
from mailstream.gateway.console import auth as console_auth
from mailstream.gateway.console.auth import LOGIN_COOKIE, SESSION_COOKIE, Session, cookie_flags, new_token, same_token
from mailstream.gateway.console.pages import render_page
from mailstream.gateway.console.preview import parse_sample, render_preview
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.domain_models import SendingDomainCreate
from mailstream.gateway.errors import ApiError
from mailstream.gateway.models import EmailCreate, EmailUpdate, SmtpTokenCreate
from mailstream.gateway.routes import domains as domain_api
from mailstream.gateway.routes import emails as email_api
from mailstream.gateway.routes import ips as ip_api
from mailstream.gateway.routes import sends as send_api
from mailstream.gateway.routes import stats as stats_api
from mailstream.gateway.routes import tokens as token_api

MAX_FORM_BYTES = 2_500_000  # an email's HTML (2 MB at most) and the other fields
SAMPLE_CONTACT = '{"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com"}'


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


# --- sign-in -------------------------------------------------------------------------------------


def safe_next(value: str | None) -> str:
    """Only a console path: never an absolute URL or //host (no open redirect)."""
    if value and value.startswith("/console") and not value.startswith("//"):
        return value
    return "/console/emails"


def login_page(
    request: Request, *, status: int = 200, error: str = "", email: str = "", next_path: str | None = None
) -> Response:
    token = new_token()
    page = render_page(
        request,
        "login.html",
        status=status,
        title="Sign in",
        login_csrf=token,
        error=error,
        email=email,
        next=safe_next(next_path or request.query_params.get("next")),
    )
    page.set_cookie(LOGIN_COOKIE, token, **flags(request, max_age=3600))
    return page


@router.get("", response_class=HTMLResponse)
async def home() -> Response:
    return see("/console/emails")


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    return login_page(request)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    fields = await form_fields(request)
    if not same_token(request.cookies.get(LOGIN_COOKIE), fields.get("csrf")):
        return login_page(request, status=403, error=CSRF_MESSAGE, next_path=fields.get("next"))
    email, password = fields.get("email", ""), fields.get("password", "")
    session_id, wait = await auth_of(request).sign_in(email, password)
    if wait:
        return login_page(
            request,
            status=429,
            email=email,
            error=f"Too many failed sign-ins: try again in {int(wait) + 1} seconds.",
            next_path=fields.get("next"),
        )
    if session_id is None:
        return login_page(
            request, status=401, email=email, error="Wrong email or password.", next_path=fields.get("next")
        )
    answer = see(safe_next(fields.get("next")))
    answer.set_cookie(SESSION_COOKIE, session_id, **flags(request, max_age=int(auth_of(request).session_s)))
    answer.delete_cookie(LOGIN_COOKIE, path=console_auth.COOKIE_PATH)
    return answer


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request, session: User) -> Response:
    await checked_form(request, session)
    await auth_of(request).sign_out(request.cookies.get(SESSION_COOKIE))
    answer = see("/console/login")
    answer.delete_cookie(SESSION_COOKIE, path=console_auth.COOKIE_PATH)
    return answer


# --- emails --------------------------------------------------------------------------------------


@router.get("/emails", response_class=HTMLResponse)
async def emails_list(request: Request, session: User) -> Response:
    page = await email_api.list_emails(request, session.account_id, deps_of(request), limit=100, after=None)
    return render_page(request, "emails.html", title="Emails", emails=page["results"])


EMPTY_EMAIL = {
    "name": "",
    "subject": "",
    "fromName": "",
    "fromEmail": "",
    "html": "<p>Hello {{ contact.firstname }},</p>",
    "subscriptionType": "TRANSACTIONAL",
    "tracking": True,
}


def email_fields(fields: dict[str, str]) -> dict[str, Any]:
    return {
        "name": fields.get("name", "").strip(),
        "subject": fields.get("subject", ""),
        "fromName": fields.get("fromName", ""),
        "fromEmail": fields.get("fromEmail", "").strip(),
        "html": fields.get("html", ""),
        "subscriptionType": fields.get("subscriptionType", "TRANSACTIONAL"),
        "tracking": fields.get("tracking") == "on",
    }


@router.get("/emails/new", response_class=HTMLResponse)
async def email_new(request: Request, session: User) -> Response:
    return render_page(request, "email_new.html", title="New email", email=EMPTY_EMAIL, errors=[])


@router.post("/emails", response_class=HTMLResponse)
async def email_create(request: Request, session: User) -> Response:
    email = email_fields(await checked_form(request, session))
    try:
        body = EmailCreate(**email)
        created = await email_api.create_email(body, session.account_id, deps_of(request))
    except ValidationError as exc:
        return render_page(
            request, "email_new.html", status=400, title="New email", email=email, errors=validation_messages(exc)
        )
    except ApiError as exc:
        if exc.status != 400:
            raise
        return render_page(request, "email_new.html", status=400, title="New email", email=email, errors=[exc.message])
    return see(f"/console/emails/{created['emailId']}?notice=created")


NOTICES = {
    "created": "Email created.",
    "saved": "Saved: a new version of the email.",
    "converted": "Converted to the single-send API.",
    "published": "Published.",
    "cloned": "This is a new draft, cloned from the email.",
}


async def editor(
    request: Request,
    session: Session,
    email_id: int,
    *,
    status: int = 200,
    form: dict[str, Any] | None = None,
    contact: str = SAMPLE_CONTACT,
    custom: str = "{}",
    errors: list[str] | None = None,
    action_error: str = "",
) -> Response:
    deps = deps_of(request)
    stored = await email_api.get_email(email_id, session.account_id, deps)
    stats = await stats_api.get_stats(session.account_id, deps, emailId=email_id, tokenId=None)
    shown = {**stored, **(form or {})}
    sample_contact, contact_problem = parse_sample(contact, "The sample contact")
    sample_custom, custom_problem = parse_sample(custom, "The custom properties")
    preview = render_preview(shown["subject"], shown["html"], sample_contact, sample_custom)
    problems = [p for p in (contact_problem, custom_problem) if p] + list(preview.errors)
    return render_page(
        request,
        "email_edit.html",
        status=status,
        title=f"Email {stored['name']}",
        stored=stored,
        email=shown,
        stats=stats,
        contact=contact,
        custom=custom,
        preview=preview,
        preview_errors=problems,
        errors=errors or [],
        action_error=action_error,
        notice=NOTICES.get(request.query_params.get("notice", ""), ""),
    )


@router.get("/emails/{email_id}", response_class=HTMLResponse)
async def email_page(request: Request, email_id: int, session: User) -> Response:
    return await editor(request, session, email_id)


@router.post("/emails/{email_id}", response_class=HTMLResponse)
async def email_save(request: Request, email_id: int, session: User) -> Response:
    fields = await checked_form(request, session)
    form = email_fields(fields)
    samples = {"contact": fields.get("sampleContact", ""), "custom": fields.get("sampleCustom", "")}
    if fields.get("action") == "preview":
        return await editor(request, session, email_id, form=form, **samples)
    try:
        await email_api.update_email(email_id, EmailUpdate(**form), session.account_id, deps_of(request))
    except ValidationError as exc:
        problems = validation_messages(exc)
        return await editor(request, session, email_id, status=400, form=form, errors=problems, **samples)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await editor(request, session, email_id, status=exc.status, form=form, errors=[exc.message], **samples)
    return see(f"/console/emails/{email_id}?notice=saved")


async def email_action(request: Request, session: Session, email_id: int, action, notice: str) -> Response:
    await checked_form(request, session)
    try:
        await action(email_id, session.account_id, deps_of(request))
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await editor(request, session, email_id, status=exc.status, action_error=exc.message)
    return see(f"/console/emails/{email_id}?notice={notice}")


@router.post("/emails/{email_id}/convert", response_class=HTMLResponse)
async def email_convert(request: Request, email_id: int, session: User) -> Response:
    return await email_action(request, session, email_id, email_api.convert, "converted")


@router.post("/emails/{email_id}/publish", response_class=HTMLResponse)
async def email_publish(request: Request, email_id: int, session: User) -> Response:
    return await email_action(request, session, email_id, email_api.publish_email, "published")


@router.post("/emails/{email_id}/clone", response_class=HTMLResponse)
async def email_clone(request: Request, email_id: int, session: User) -> Response:
    await checked_form(request, session)
    clone = await email_api.clone_email(email_id, session.account_id, deps_of(request))
    return see(f"/console/emails/{clone['emailId']}?notice=cloned")


# --- SMTP tokens ---------------------------------------------------------------------------------


def no_store(page: Response) -> Response:
    """A page with a password: not kept by the browser's or any proxy's cache."""
    page.headers["Cache-Control"] = "no-store"
    return page


@router.get("/tokens", response_class=HTMLResponse)
async def tokens_list(request: Request, session: User) -> Response:
    rows = await tokens_store.list_tokens(
        deps_of(request).pool, session.account_id, after=0, limit=101, campaign_name=None, email_campaign_id=None
    )
    deleted = request.query_params.get("deleted", "")
    notice = f"Token {deleted} deleted: its password no longer works." if deleted else ""
    return render_page(
        request, "tokens.html", title="SMTP tokens", tokens=rows[:100], more=len(rows) > 100, errors=[], notice=notice
    )


@router.post("/tokens", response_class=HTMLResponse)
async def token_create(request: Request, session: User) -> Response:
    fields = await checked_form(request, session)
    deps = deps_of(request)
    try:
        campaign = fields.get("campaignName", "").strip()
        body = SmtpTokenCreate(campaignName=campaign, createContact="createContact" in fields)
    except ValidationError as exc:
        rows = await tokens_store.list_tokens(
            deps.pool, session.account_id, after=0, limit=100, campaign_name=None, email_campaign_id=None
        )
        return render_page(
            request,
            "tokens.html",
            status=400,
            title="SMTP tokens",
            tokens=rows,
            more=False,
            errors=validation_messages(exc),
            notice="",
        )
    password, password_hash = await token_api._new_password()
    token = await tokens_store.create_token(
        deps.pool,
        token_id=token_api.passwords.new_token_id(),
        account_id=session.account_id,
        password_hash=password_hash,
        campaign_name=body.campaignName,
        create_contact=body.createContact,
        created_by=session.email,
    )
    return no_store(
        render_page(
            request,
            "token_password.html",
            title="SMTP token created",
            token=token,
            campaign=token.campaign_name,
            password=password,
        )
    )


@router.get("/tokens/{token_id}", response_class=HTMLResponse)
async def token_page(request: Request, token_id: str, session: User) -> Response:
    deps = deps_of(request)
    view = await token_api.get_token(token_id, session.account_id, deps)
    statistics = await token_api.token_statistics(token_id, session.account_id, deps)
    return render_page(request, "token.html", title=f"SMTP token {view['campaignName']}", token=view, stats=statistics)


@router.get("/tokens/{token_id}/reset", response_class=HTMLResponse)
async def token_reset_confirm(request: Request, token_id: str, session: User) -> Response:
    view = await token_api.get_token(token_id, session.account_id, deps_of(request))
    return render_page(request, "token_confirm.html", title="Reset the password?", token=view, action="reset")


@router.post("/tokens/{token_id}/reset", response_class=HTMLResponse)
async def token_reset(request: Request, token_id: str, session: User) -> Response:
    await checked_form(request, session)
    view = await token_api.reset_password(token_id, session.account_id, deps_of(request))
    password = view.pop("password")
    return no_store(
        render_page(
            request,
            "token_password.html",
            title="New SMTP password",
            token=view,
            campaign=view["campaignName"],
            password=password,
        )
    )


@router.get("/tokens/{token_id}/delete", response_class=HTMLResponse)
async def token_delete_confirm(request: Request, token_id: str, session: User) -> Response:
    view = await token_api.get_token(token_id, session.account_id, deps_of(request))
    return render_page(request, "token_confirm.html", title="Delete the token?", token=view, action="delete")


@router.post("/tokens/{token_id}/delete", response_class=HTMLResponse)
async def token_delete(request: Request, token_id: str, session: User) -> Response:
    await checked_form(request, session)
    await token_api.delete_token(token_id, session.account_id, deps_of(request))
    return see(f"/console/tokens?deleted={quote(token_id)}")


# --- domains and dedicated IPs -------------------------------------------------------------------


async def domains_page(request: Request, session: Session, *, status: int = 200, error: str = "") -> Response:
    deps = deps_of(request)
    page = await domain_api.list_domains(request, session.account_id, deps, after=None, limit=100)
    ips = await ip_api.get_ips(session.account_id, deps)
    return render_page(
        request, "domains.html", status=status, title="Sending domains", domains=page.results, ips=ips, error=error
    )


@router.get("/domains", response_class=HTMLResponse)
async def domains_list(request: Request, session: User) -> Response:
    return await domains_page(request, session)


@router.post("/domains", response_class=HTMLResponse)
async def domain_add(request: Request, session: User) -> Response:
    fields = await checked_form(request, session)
    try:
        body = SendingDomainCreate(domain=fields.get("domain", "").strip())
        await domain_api.add_domain(body, session.account_id, deps_of(request))
    except ValidationError as exc:
        return await domains_page(request, session, status=400, error="; ".join(validation_messages(exc)))
    except ApiError as exc:
        return await domains_page(request, session, status=exc.status, error=exc.message)
    return see("/console/domains")


@router.post("/domains/{domain}/verify", response_class=HTMLResponse)
async def domain_verify(request: Request, domain: str, session: User) -> Response:
    await checked_form(request, session)
    await domain_api.verify_domain(domain, session.account_id, deps_of(request))
    return see(f"/console/domains#domain-{quote(domain)}")


# --- send statuses and suppressions --------------------------------------------------------------


@router.get("/sends", response_class=HTMLResponse)
async def sends_search(request: Request, session: User) -> Response:
    deps = deps_of(request)
    kind = request.query_params.get("by", "statusId")
    query = request.query_params.get("q", "").strip()
    found, error = None, ""
    if query:
        try:
            if kind == "sendId":
                row = await PgAcceptStore(deps.pool).first_send_status(session.account_id, query)
                if row is None:
                    raise ApiError(404, "OBJECT_NOT_FOUND", f"No send with sendId {query}")
                found = send_api.status_view(row)
            else:
                found = await send_api.send_status(query, session.account_id, deps)
        except ApiError as exc:
            error = exc.message
    return render_page(
        request,
        "sends.html",
        status=404 if error else 200,
        title="Send statuses",
        kind=kind,
        query=query,
        found=found,
        error=error,
    )


@router.get("/suppressions", response_class=HTMLResponse)
async def suppressions(request: Request, session: User) -> Response:
    query = request.query_params.get("q", "").strip().lower()
    rows = await deps_of(request).pool.fetch(
        """SELECT address, array_agg(reason ORDER BY reason) AS reasons FROM suppression_reasons
           WHERE account_id = $1 AND ($2 = '' OR strpos(address, $2) > 0)
           GROUP BY address ORDER BY address LIMIT 201""",
        session.account_id,
        query,
    )
    return render_page(
        request, "suppressions.html", title="Suppressions", rows=rows[:200], more=len(rows) > 200, query=query
    )
