"""Event webhooks of the caller's account (docs/webhooks.md): endpoints that get the account's
delivery, engagement and unsubscribe events as signed, batched POSTs from the dispatcher.

POST   /mailstream/v1/webhooks                          201, the endpoint and its secret (shown this once)
GET    /mailstream/v1/webhooks
GET    /mailstream/v1/webhooks/{webhook_id}
PATCH  /mailstream/v1/webhooks/{webhook_id}             url, description, eventTypes, enabled (false = paused)
DELETE /mailstream/v1/webhooks/{webhook_id}             204; its queued events are dropped
POST   /mailstream/v1/webhooks/{webhook_id}/rotate-secret   a new secret; the old one signs beside it a while
POST   /mailstream/v1/webhooks/{webhook_id}/test        one `test` event POSTed now; the attempt
GET    /mailstream/v1/webhooks/{webhook_id}/deliveries  the delivery log, newest first (paged by id)
POST   /mailstream/v1/webhooks/{webhook_id}/replay      202: the events recorded since a time, sent again
GET    /mailstream/v1/webhooks/{webhook_id}/replays
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from mailstream.gateway.adapters import webhooks_store as store
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import invalid, not_found
from mailstream.gateway.views import iso
from mailstream.gateway.webhook_models import (
    DeliveryPage,
    DeliveryView,
    ReplayCreate,
    ReplayPage,
    ReplayView,
    RotatedSecret,
    RotateSecret,
    WebhookCreate,
    WebhookCreated,
    WebhookFields,
    WebhookPage,
    WebhookView,
    delivery_view,
    replay_view,
    webhook_view,
)
from mailstream.gateway.webhooks.delivery import request_headers
from mailstream.gateway.webhooks.events import test_event
from mailstream.gateway.webhooks.signing import new_secret
from mailstream.gateway.webhooks.url_policy import TargetRefused, check_addresses, check_url, parse_target

BASE = "/mailstream/v1/webhooks"
router = APIRouter(tags=["Webhooks"])
RESOLVE_TIMEOUT_S = 3.0


def _id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise not_found(f"Webhook {value}") from None


async def _checked_url(deps: Deps, url: str) -> str:
    """The URL if its form and target are allowed (a name is resolved now and at every delivery;
    one that does not resolve now is accepted, its deliveries fail until it does)."""
    allowed = deps.webhooks.allowed_networks
    try:
        check_url(url, allowed=allowed)
        _, host = parse_target(url)
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            infos = []
        check_addresses(host, [i[4][0] for i in infos], allowed=allowed)
    except TargetRefused as exc:
        raise invalid("url", str(exc)) from None
    return url


async def _row(deps: Deps, account: int, webhook_id: str) -> dict[str, Any]:
    row = await store.get(deps.pool, account, _id(webhook_id))
    if row is None:
        raise not_found(f"Webhook {webhook_id}")
    return row


def _parse_time(field: str, value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(field, "an ISO 8601 time, e.g. 2026-12-07T14:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.post(BASE, status_code=201)
async def create_webhook(body: WebhookCreate, account: Account, deps: Deps) -> WebhookCreated:
    """A new endpoint; it gets the events recorded from now on. The secret is shown this once."""
    url = await _checked_url(deps, body.url)
    secret = new_secret()
    row = await store.create(
        deps.pool,
        account_id=account,
        url=url,
        description=body.description or "",
        event_types=list(dict.fromkeys(body.eventTypes)),
        enabled=True if body.enabled is None else body.enabled,
        secret=secret,
    )
    return WebhookCreated(**webhook_view(row), secret=secret)


@router.get(BASE)
async def list_webhooks(account: Account, deps: Deps) -> WebhookPage:
    return WebhookPage(results=[WebhookView(**webhook_view(r)) for r in await store.list_all(deps.pool, account)])


@router.get(BASE + "/{webhook_id}")
async def get_webhook(webhook_id: str, account: Account, deps: Deps) -> WebhookView:
    return WebhookView(**webhook_view(await _row(deps, account, webhook_id)))


@router.patch(BASE + "/{webhook_id}")
async def update_webhook(webhook_id: str, body: WebhookFields, account: Account, deps: Deps) -> WebhookView:
    """Changes the fields given (null leaves one as it is); enabled=false pauses the endpoint."""
    await _row(deps, account, webhook_id)
    changes: dict[str, Any] = {}
    if body.url is not None:
        changes["url"] = await _checked_url(deps, body.url)
    if body.description is not None:
        changes["description"] = body.description
    if body.eventTypes is not None:
        changes["event_types"] = list(dict.fromkeys(body.eventTypes))
    if body.enabled is not None:
        changes["enabled"] = body.enabled
    if not await store.update(deps.pool, account, _id(webhook_id), changes):
        raise not_found(f"Webhook {webhook_id}")
    return WebhookView(**webhook_view(await _row(deps, account, webhook_id)))


@router.delete(BASE + "/{webhook_id}", status_code=204)
async def delete_webhook(webhook_id: str, account: Account, deps: Deps) -> Response:
    if not await store.delete(deps.pool, account, _id(webhook_id)):
        raise not_found(f"Webhook {webhook_id}")
    return Response(status_code=204)


@router.post(BASE + "/{webhook_id}/rotate-secret")
async def rotate_webhook_secret(
    webhook_id: str, account: Account, deps: Deps, body: RotateSecret | None = None
) -> RotatedSecret:
    """A new secret signs from now on; the old one signs beside it (a second v1) for overlapSeconds
    (default 24 h; 0: at once no more), so receivers can switch without refusing a request."""
    overlap = deps.webhooks.secret_overlap_s if body is None or body.overlapSeconds is None else body.overlapSeconds
    secret = new_secret()
    expires = await store.rotate_secret(deps.pool, account, _id(webhook_id), secret, overlap)
    if expires is None:
        raise not_found(f"Webhook {webhook_id}")
    return RotatedSecret(secret=secret, previousSecretExpiresAt=iso(expires))


@router.post(BASE + "/{webhook_id}/test")
async def send_test_event(webhook_id: str, account: Account, deps: Deps) -> DeliveryView:
    """POSTs one `test` event to the endpoint now (paused or not), signed like every delivery, and
    answers the attempt (also in the delivery log). It is not retried."""
    await _row(deps, account, webhook_id)
    target = await store.signing_target(deps.pool, _id(webhook_id))
    if target is None:
        raise not_found(f"Webhook {webhook_id}")
    event_id = str(uuid.uuid4())
    body = json.dumps([test_event(event_id, account, datetime.now(UTC))], separators=(",", ":")).encode()
    headers = request_headers(target["id"], target["secrets"], body, 1, {""})
    attempt = await deps.webhooks.client().post(target["url"], body, headers)
    row = await store.log_delivery(
        deps.pool, target["id"], kind="TEST", outcome="DELIVERED" if attempt.ok else "FAILED", event_ids=[event_id],
        attempt=1, status_code=attempt.status, error=attempt.error, duration_ms=attempt.duration_ms,
        excerpt=attempt.excerpt,
    )  # fmt: skip
    return delivery_view(row)


@router.get(BASE + "/{webhook_id}/deliveries", response_model_exclude_none=True)
async def webhook_deliveries(
    request: Request,
    webhook_id: str,
    account: Account,
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> DeliveryPage:
    """One entry per POST (EVENTS, TEST) and per parking (PARKED, with the reason), newest first;
    `paging.next.before` is the next page's cursor."""
    await _row(deps, account, webhook_id)
    rows = await store.deliveries(deps.pool, _id(webhook_id), before=before, limit=limit + 1)
    page: dict[str, Any] = {"results": [delivery_view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        cursor = rows[limit - 1]["id"]
        page["paging"] = {"next": {"before": cursor, "link": str(request.url.include_query_params(before=cursor))}}
    return DeliveryPage(**page)


@router.post(BASE + "/{webhook_id}/replay", status_code=202)
async def replay_webhook(webhook_id: str, body: ReplayCreate, account: Account, deps: Deps) -> ReplayView:
    """Sends again the events recorded on the topics from `since` (to `until`, default now) that the
    endpoint's event types take, with their own event ids; the dispatcher starts within a second."""
    await _row(deps, account, webhook_id)
    now = datetime.now(UTC)
    since = _parse_time("since", body.since)
    until = _parse_time("until", body.until) if body.until else now
    if since >= until:
        raise invalid("since", "must be before until (default: now)")
    if since > now:
        raise invalid("since", "must not be in the future")
    return replay_view(await store.create_replay(deps.pool, _id(webhook_id), since, min(until, now)))


@router.get(BASE + "/{webhook_id}/replays")
async def webhook_replays(webhook_id: str, account: Account, deps: Deps) -> ReplayPage:
    await _row(deps, account, webhook_id)
    return ReplayPage(results=[replay_view(r) for r in await store.replays(deps.pool, _id(webhook_id))])
