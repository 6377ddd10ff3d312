"""Emails (templates): create, update, get, list, publish, clone, archive, convert."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from mailstream.gateway import rules
from mailstream.gateway.adapters import emails
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import ApiError, conflict, invalid, not_found
from mailstream.gateway.models import EmailCreate, EmailPage, EmailUpdate, EmailView, ObjectId
from mailstream.gateway.views import email_view

router = APIRouter(prefix="/mailstream/v1/emails", tags=["emails"])


def _content(body: EmailCreate | EmailUpdate, *, partial: bool) -> dict[str, Any]:
    fields = {
        "subject": body.subject,
        "from_name": body.fromName,
        "from_email": body.fromEmail,
        "reply_to": body.replyTo,
        "html": body.html,
        "text_body": body.text,
        "subscription_type": body.subscriptionType,
        "tracking": body.tracking,
    }
    if partial:
        fields = {k: v for k, v in fields.items() if k in _given(body)}
        if "html" in fields and "text_body" not in fields:
            fields["text_body"] = None  # derived again from the new HTML below
    for name, value in (
        ("fromEmail", body.fromEmail),
        *((f"replyTo[{i}]", a) for i, a in enumerate(body.replyTo or [])),
    ):
        if value is not None and not rules.valid_address(value):
            raise invalid(name, f"{value!r} is not a valid email address")
    if "html" in fields and fields.get("text_body") is None:
        fields["text_body"] = rules.html_to_text(fields["html"] or "")
    return fields


def _given(body: EmailUpdate) -> set[str]:
    names = {
        "subject": "subject",
        "fromName": "from_name",
        "fromEmail": "from_email",
        "replyTo": "reply_to",
        "html": "html",
        "text": "text_body",
        "subscriptionType": "subscription_type",
        "tracking": "tracking",
    }
    return {names[f] for f in body.model_fields_set if f in names and getattr(body, f) is not None}


async def _get(deps: Deps, account: int, email_id: int) -> emails.EmailRow:
    email = await emails.get_email(deps.pool, account, email_id)
    if email is None:
        raise not_found(f"Email {email_id}")
    return email


@router.post("", status_code=201, response_model=EmailView)
async def create_email(body: EmailCreate, account: Account, deps: Deps) -> dict[str, Any]:
    """A new DRAFT; the plain-text part is derived from the HTML when `text` is absent."""
    return email_view(await emails.create_email(deps.pool, account, body.name, _content(body, partial=False)))


@router.get("", response_model=EmailPage, response_model_exclude_none=True)
async def list_emails(
    request: Request,
    account: Account,
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=20, pattern=r"^\d+$")] = None,
    archived: bool = False,
) -> dict[str, Any]:
    """The account's emails by id, `limit` per page; `paging.next.after` is the next page's cursor."""
    rows = await emails.list_emails(
        deps.pool, account, after=int(after or 0), limit=limit + 1, include_archived=archived
    )
    page: dict[str, Any] = {"results": [email_view(e) for e in rows[:limit]]}
    if len(rows) > limit:
        cursor = str(rows[limit - 1].id)
        page["paging"] = {
            "next": {"after": cursor, "link": str(request.url.include_query_params(after=cursor, limit=limit))}
        }
    return page


@router.get("/{email_id}", response_model=EmailView)
async def get_email(email_id: ObjectId, account: Account, deps: Deps) -> dict[str, Any]:
    return email_view(await _get(deps, account, email_id))


@router.patch("/{email_id}", response_model=EmailView)
async def update_email(email_id: ObjectId, body: EmailUpdate, account: Account, deps: Deps) -> dict[str, Any]:
    """Stores a new immutable version (sends already accepted keep rendering the version they named)."""
    email = await _get(deps, account, email_id)
    if email.state == "ARCHIVED":
        raise conflict(f"Email {email_id} is archived: clone it to edit its content")
    updated = await emails.update_email(deps.pool, account, email_id, body.name, _content(body, partial=True))
    await deps.email_changed(email_id)
    if updated is None:
        raise not_found(f"Email {email_id}")
    return email_view(updated)


@router.post("/{email_id}/publish", response_model=EmailView)
async def publish_email(email_id: ObjectId, account: Account, deps: Deps) -> dict[str, Any]:
    """DRAFT -> PUBLISHED. A MARKETING email needs an unsubscribe link ({{ unsubscribe_link }})."""
    email = await _get(deps, account, email_id)
    if email.state == "PUBLISHED":
        return email_view(email)
    if email.state != "DRAFT":
        raise conflict(f"Email {email_id} is {email.state.lower()}: only a draft can be published")
    if email.subscription_type == "MARKETING" and not rules.has_unsubscribe_link(email.html):
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"Email {email_id} is a MARKETING email without an unsubscribe link: add {{{{ unsubscribe_link }}}} "
            "(or a link to your unsubscribe page) to its HTML, then publish again",
            [{"message": "a MARKETING email must contain an unsubscribe link", "in": "html", "code": "UNSUBSCRIBE"}],
        )
    published = await emails.set_state(deps.pool, account, email_id, from_states=("DRAFT",), to="PUBLISHED")
    await deps.email_changed(email_id)
    if not published:
        raise conflict(f"Email {email_id} changed state meanwhile; read it and retry")
    return email_view(await _get(deps, account, email_id))


@router.post("/{email_id}/clone", status_code=201, response_model=EmailView)
async def clone_email(email_id: ObjectId, account: Account, deps: Deps) -> dict[str, Any]:
    """A new DRAFT with the current content of the email."""
    src = await _get(deps, account, email_id)
    content = {
        "subject": src.subject,
        "from_name": src.from_name,
        "from_email": src.from_email,
        "reply_to": list(src.reply_to),
        "html": src.html,
        "text_body": src.text_body,
        "subscription_type": src.subscription_type,
        "tracking": src.tracking,
    }
    name = f"{src.name} (clone)"[:255]
    return email_view(await emails.create_email(deps.pool, account, name, content, cloned_from=src.id))


@router.post("/{email_id}/archive", response_model=EmailView)
async def archive_email(email_id: ObjectId, account: Account, deps: Deps) -> dict[str, Any]:
    """ARCHIVED: no longer listed by default, and sends of it end with MISSING_CONTENT."""
    await _get(deps, account, email_id)
    await emails.set_state(deps.pool, account, email_id, from_states=("DRAFT", "PUBLISHED"), to="ARCHIVED")
    await deps.email_changed(email_id)
    return email_view(await _get(deps, account, email_id))


@router.post("/{email_id}/convert-to-single-send-api", response_model=EmailView)
async def convert(email_id: ObjectId, account: Account, deps: Deps) -> dict[str, Any]:
    """Only a draft converts; a published email answers 409: clone it and convert the clone."""
    email = await _get(deps, account, email_id)
    if not email.single_send_api and not await emails.convert_to_single_send_api(deps.pool, account, email_id):
        email = await _get(deps, account, email_id)
        raise conflict(
            f"Email {email_id} is {email.state.lower()}: only drafts can be converted to the single-send API; "
            "clone it and convert the clone"
        )
    await deps.email_changed(email_id)
    return email_view(await _get(deps, account, email_id))


@router.post("/{email_id}/save-for-automation", response_model=EmailView)
async def save_for_automation(email_id: ObjectId, account: Account, deps: Deps) -> dict[str, Any]:
    """The email becomes usable by trigger rules (docs/automation.md). As with the single-send API,
    only a draft is saved; a published email answers 409: clone it and save the clone."""
    email = await _get(deps, account, email_id)
    if not email.automation and not await emails.save_for_automation(deps.pool, account, email_id):
        email = await _get(deps, account, email_id)
        raise conflict(
            f"Email {email_id} is {email.state.lower()}: only drafts can be saved for automation; "
            "clone it and save the clone"
        )
    await deps.email_changed(email_id)
    return email_view(await _get(deps, account, email_id))
