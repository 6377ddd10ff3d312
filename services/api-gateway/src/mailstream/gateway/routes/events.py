"""The email events API (HubSpot's legacy email events, v1), from the tracker's events.

GET /email/public/v1/events?recipient&campaignId&emailId&eventType&startTimestamp&endTimestamp&offset&limit
GET /email/public/v1/events/{created}/{id}
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from mailstream.gateway.adapters import events
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import invalid, not_found
from mailstream.gateway.event_views import (
    EVENT_TYPES,
    epoch_ms,
    event_view,
    events_page_view,
    from_epoch_ms,
    parse_page_cursor,
)

BASE = "/email/public/v1/events"
router = APIRouter(tags=["email events"])
EpochMs = Annotated[int | None, Query(ge=0, le=253402300799999)]


@router.get(BASE)
async def list_events(
    account: Account,
    deps: Deps,
    recipient: Annotated[str | None, Query(max_length=320)] = None,
    campaignId: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    emailId: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    eventType: Annotated[str | None, Query(max_length=32)] = None,
    startTimestamp: EpochMs = None,
    endTimestamp: EpochMs = None,
    offset: Annotated[str | None, Query(max_length=80)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The account's email events, newest first. campaignId is an SMTP token's emailCampaignId;
    emailId (ours) an email's; startTimestamp and endTimestamp (epoch ms) are inclusive; pass the
    page's `offset` to get the next one while `hasMore`."""
    if eventType is not None and eventType.upper() not in EVENT_TYPES:
        raise invalid("eventType", f"{eventType!r} is not one of {', '.join(sorted(EVENT_TYPES))}")
    try:
        before = parse_page_cursor(offset)
    except ValueError:
        raise invalid("offset", "use the offset of the previous page") from None
    where = events.EventFilter(
        recipient=recipient,
        campaign_id=campaignId,
        email_id=emailId,
        event_type=eventType.upper() if eventType else None,
        start=from_epoch_ms(startTimestamp) if startTimestamp is not None else None,
        end=from_epoch_ms(endTimestamp + 1) if endTimestamp is not None else None,  # inclusive of the ms
    )
    rows = await events.list_events(deps.pool, account, where, before=before, limit=limit)
    return events_page_view(rows, limit, account)


@router.get(BASE + "/{created}/{event_id}")
async def get_event(
    created: Annotated[int, Path(ge=0, le=253402300799999)], event_id: str, account: Account, deps: Deps
) -> dict[str, Any]:
    """One event, by its `created` (epoch ms) and `id`."""
    try:
        key = uuid.UUID(event_id)
    except ValueError:
        raise not_found(f"Event {created}/{event_id}") from None
    row = await events.get_event(deps.pool, account, key)
    if row is None or epoch_ms(row["created"]) != created:
        raise not_found(f"Event {created}/{event_id}")
    return event_view(row, account)
