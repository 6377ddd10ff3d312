"""The console's pages: plain HTML forms (POST, then a redirect or the answer page), each action
calling the same functions as the JSON API's handlers (routes/*), so the rules and messages are
the API's. Every page needs a signed-in user and shows only that user's account: another
account's object answers 404, as in the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from mailstream.gateway.adapters import contacts as contacts_store
from mailstream.gateway.adapters import emails as emails_store
from mailstream.gateway.adapters import events as events_store
from mailstream.gateway.adapters import one_off_sends as one_off_store
from mailstream.gateway.adapters import sends as sends_store
from mailstream.gateway.adapters import tokens_store
from mailstream.gateway.adapters.accepting import PgAcceptStore
from mailstream.gateway.console import auth as console_auth
from mailstream.gateway.console.auth import LOGIN_COOKIE, SESSION_COOKIE, Session, new_token, same_token
from mailstream.gateway.console.confirm import Confirmation, confirmation
from mailstream.gateway.console.forms import (
    CHART_DAYS,
    PAGE_SIZE,
    SERIES,
    addresses_of,
    bar_chart,
    daily_series,
    offset_of,
    page_of,
    utc_time,
)
from mailstream.gateway.console.pages import render_page
from mailstream.gateway.console.preview import parse_sample, render_preview
from mailstream.gateway.console.web import (
    CSRF_MESSAGE,
    User,
    auth_of,
    checked_form,
    deps_of,
    flags,
    form_fields,
    router,
    see,
    validation_messages,
)
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.domain_models import SendingDomainCreate
from mailstream.gateway.errors import ApiError
from mailstream.gateway.models import EmailCreate, EmailUpdate, SmtpTokenCreate
from mailstream.gateway.one_off import one_off_view
from mailstream.gateway.one_off_models import OneOffSendCreate
from mailstream.gateway.routes import domains as domain_api
from mailstream.gateway.routes import emails as email_api
from mailstream.gateway.routes import ips as ip_api
from mailstream.gateway.routes import one_off_sends as one_off_api
from mailstream.gateway.routes import sends as send_api
from mailstream.gateway.routes import stats as stats_api
from mailstream.gateway.routes import suppressions as suppression_api
from mailstream.gateway.routes import tokens as token_api
from mailstream.gateway.views import email_view

SAMPLE_CONTACT = '{"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.com"}'


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


def offset_in(request: Request) -> int:
    return offset_of(request.query_params.get("offset"))


@router.get("/emails", response_class=HTMLResponse)
async def emails_list(request: Request, session: User) -> Response:
    offset = offset_in(request)
    rows = await emails_store.list_emails(
        deps_of(request).pool, session.account_id, after=0, limit=PAGE_SIZE + 1, include_archived=False, offset=offset
    )
    page = page_of([email_view(r) for r in rows], offset=offset, path="/console/emails", query={})
    return render_page(request, "emails.html", title="Emails", page=page)


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
    "automation": "Saved for automation: trigger rules can use this email.",
    "sent": "One-off send recorded: see its progress below.",
    "scheduled": "One-off send scheduled: see it below.",
    "canceled": "One-off send canceled.",
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
    send_form: dict[str, str] | None = None,
    send_errors: list[str] | None = None,
) -> Response:
    deps = deps_of(request)
    stored = await email_api.get_email(email_id, session.account_id, deps)
    sends = await email_one_offs(deps, session.account_id, email_id)
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
        sends=sends,
        send_form=send_form or {"audience": "addresses", "addresses": "", "sendAt": ""},
        send_errors=send_errors or [],
        send_key=str(uuid.uuid4()),
    )


async def email_one_offs(deps: Dependencies, account_id: int, email_id: int) -> list[dict[str, Any]]:
    async with deps.pool.acquire() as conn:
        rows = await one_off_store.list_one_offs_of_email(conn, account_id, email_id, limit=20)
        return [one_off_view(r, await one_off_store.tally(conn, account_id, str(r["id"]))) for r in rows]


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


@router.post("/emails/{email_id}/save-for-automation", response_class=HTMLResponse)
async def email_save_for_automation(request: Request, email_id: int, session: User) -> Response:
    return await email_action(request, session, email_id, email_api.save_for_automation, "automation")


def one_off_body(email_id: int, fields: dict[str, str]) -> OneOffSendCreate:
    """The send form as the API's body (ValidationError or ValueError with the field's problem)."""
    if fields.get("audience") == "allContacts":
        audience: dict[str, Any] = {"allContacts": True}
    else:
        addresses = addresses_of(fields.get("addresses", ""))
        if not addresses:
            raise ValueError("Give at least one address (one a line), or choose all contacts.")
        audience = {"addresses": addresses}
    try:
        send_at = utc_time(fields.get("sendAt", ""))
    except ValueError:
        raise ValueError("The send time is not a date and time (UTC).") from None
    if send_at is not None and send_at <= datetime.now(UTC):
        raise ValueError("The send time is in the past: leave it empty to send now.")
    key = fields.get("idempotencyKey") or None
    return OneOffSendCreate(emailId=email_id, audience=audience, sendAt=send_at, idempotencyKey=key)


@router.post("/emails/{email_id}/send", response_class=HTMLResponse)
async def email_send(request: Request, email_id: int, session: User) -> Response:
    fields = await checked_form(request, session)
    form = {k: fields.get(k, "") for k in ("audience", "addresses", "sendAt")}
    try:
        body = one_off_body(email_id, fields)
        await one_off_api.create_one_off_send(body, session.account_id, deps_of(request), idempotency_key=None)
    except ValidationError as exc:
        problems = validation_messages(exc)
        return await editor(request, session, email_id, status=400, send_form=form, send_errors=problems)
    except ValueError as exc:
        return await editor(request, session, email_id, status=400, send_form=form, send_errors=[str(exc)])
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await editor(request, session, email_id, status=exc.status, send_form=form, send_errors=[exc.message])
    return see(f"/console/emails/{email_id}?notice={'scheduled' if body.sendAt else 'sent'}#sends-heading")


@router.post("/emails/{email_id}/sends/{send_id}/cancel", response_class=HTMLResponse)
async def email_send_cancel(request: Request, email_id: int, send_id: str, session: User) -> Response:
    await checked_form(request, session)
    deps = deps_of(request)
    await email_api.get_email(email_id, session.account_id, deps)  # 404 for another account's email
    try:
        await one_off_api.cancel_one_off_send(send_id, session.account_id, deps)
    except ApiError as exc:
        if exc.status == 404:
            raise
        return await editor(request, session, email_id, status=exc.status, send_errors=[exc.message])
    return see(f"/console/emails/{email_id}?notice=canceled#sends-heading")


# --- SMTP tokens ---------------------------------------------------------------------------------


def no_store(page: Response) -> Response:
    """A page with a password: not kept by the browser's or any proxy's cache."""
    page.headers["Cache-Control"] = "no-store"
    return page


async def tokens_page(
    request: Request, session: Session, *, status: int = 200, errors: list[str] | None = None, notice: str = ""
) -> Response:
    offset = offset_in(request)
    rows = await tokens_store.list_tokens(  # PAGE_SIZE + 1 rows: the store adds the extra one
        deps_of(request).pool,
        session.account_id,
        after=0,
        limit=PAGE_SIZE,
        campaign_name=None,
        email_campaign_id=None,
        offset=offset,
    )
    page = page_of(rows, offset=offset, path="/console/tokens", query={})
    return render_page(
        request, "tokens.html", status=status, title="SMTP tokens", page=page, errors=errors or [], notice=notice
    )


@router.get("/tokens", response_class=HTMLResponse)
async def tokens_list(request: Request, session: User) -> Response:
    deleted = request.query_params.get("deleted", "")
    notice = f"Token {deleted} deleted: its password no longer works." if deleted else ""
    return await tokens_page(request, session, notice=notice)


@router.post("/tokens", response_class=HTMLResponse)
async def token_create(request: Request, session: User) -> Response:
    fields = await checked_form(request, session)
    deps = deps_of(request)
    try:
        campaign = fields.get("campaignName", "").strip()
        body = SmtpTokenCreate(campaignName=campaign, createContact="createContact" in fields)
    except ValidationError as exc:
        return await tokens_page(request, session, status=400, errors=validation_messages(exc))
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
    today = datetime.now(UTC).date()
    start = datetime.combine(today - timedelta(days=CHART_DAYS - 1), datetime.min.time(), UTC)
    rows = await events_store.daily_counts(
        deps.pool, session.account_id, int(view["emailCampaignId"]), start, tuple(k for k, _ in SERIES)
    )
    days = daily_series(rows, today)
    return render_page(
        request,
        "token.html",
        title=f"SMTP token {view['campaignName']}",
        token=view,
        stats=statistics,
        days=days,
        chart=bar_chart(days),
        series=SERIES,
    )


async def token_of(request: Request, session: Session) -> dict[str, Any]:
    return await token_api.get_token(request.path_params["token_id"], session.account_id, deps_of(request))


async def reset_password(request: Request, session: Session, token: dict[str, Any], fields: dict[str, str]) -> Response:
    view = await token_api.reset_password(token["id"], session.account_id, deps_of(request))
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


async def delete_token(request: Request, session: Session, token: dict[str, Any], fields: dict[str, str]) -> Response:
    await token_api.delete_token(token["id"], session.account_id, deps_of(request))
    return see(f"/console/tokens?deleted={quote(token['id'])}")


confirmation(
    Confirmation(
        "/tokens/{token_id}/reset",
        token_of,
        reset_password,
        "token_reset.html",
        title="Reset the password?",
        button="Reset the password",
        cancel="/console/tokens",
    )
)
confirmation(
    Confirmation(
        "/tokens/{token_id}/delete",
        token_of,
        delete_token,
        "token_delete.html",
        title="Delete the token?",
        button="Delete the token",
        cancel="/console/tokens",
    )
)


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
    listed = None  # a page of the recipient's sends
    offset = offset_in(request)
    if query:
        try:
            if kind == "recipient":
                rows = await sends_store.statuses_by_recipient(
                    deps.pool, session.account_id, query, limit=PAGE_SIZE + 1, offset=offset
                )
                views = [send_api.status_view(row) for row in rows]
                listed = page_of(views, offset=offset, path="/console/sends", query={"by": kind, "q": query})
            elif kind == "sendId":
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
        listed=listed,
        error=error,
    )


@router.get("/suppressions", response_class=HTMLResponse)
async def suppressions(request: Request, session: User) -> Response:
    query = request.query_params.get("q", "").strip().lower()
    offset = offset_in(request)
    rows = await contacts_store.list_suppressions(
        deps_of(request).pool, session.account_id, query, limit=PAGE_SIZE + 1, offset=offset
    )
    page = page_of(rows, offset=offset, path="/console/suppressions", query={"q": query} if query else {})
    removed, reason = request.query_params.get("removed", ""), request.query_params.get("reason", "")
    notice = ""
    if removed and reason in suppression_api.NAMES:
        notice = (
            f"The {suppression_api.NAMES[reason].lower()} suppression of {removed} is being removed: "
            "the change applies in moments (reload to see it)."
        )
    return render_page(
        request,
        "suppressions.html",
        title="Suppressions",
        page=page,
        names=suppression_api.NAMES,
        query=query,
        notice=notice,
    )


async def suppression_of(request: Request, session: Session) -> dict[str, Any]:
    """The address and the reason of the path (404 for a reason the tracker does not keep)."""
    reason = request.path_params["reason"]
    if reason not in suppression_api.NAMES:
        raise ApiError(404, "OBJECT_NOT_FOUND", "No such suppression reason.")
    name = suppression_api.NAMES[reason].lower()
    return {"address": request.path_params["address"].lower(), "reason": reason, "name": name}


async def remove_suppression(
    request: Request, session: Session, target: dict[str, Any], fields: dict[str, str]
) -> Response:
    by = f"console-user:{session.email}"
    view = await suppression_api.request_removal(
        deps_of(request), session.account_id, target["address"], target["reason"], fields.get("note", ""), by
    )
    return see(f"/console/suppressions?removed={quote(view['email'])}&reason={target['reason']}")


confirmation(
    Confirmation(
        "/suppressions/{address}/{reason}/remove",
        suppression_of,
        remove_suppression,
        "suppression_remove.html",
        title="Remove the {name} suppression of {address}?",
        button="Remove the {name} suppression",
        cancel="/console/suppressions",
        note="Reason for the removal (required, kept in the history)",
    )
)
