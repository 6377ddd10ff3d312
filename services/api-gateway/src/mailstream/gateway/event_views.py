"""The email events API's JSON (HubSpot's legacy email events, v1): events with epoch-millisecond
`created`, and {"events", "hasMore", "offset"} pages whose `offset` is an opaque cursor. Pure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EVENT_TYPES = frozenset(
    {
        "PROCESSED",
        "SENT",
        "DELIVERED",
        "DEFERRED",
        "BOUNCE",
        "DROPPED",
        "OPEN",
        "CLICK",
        "SPAMREPORT",
        "STATUSCHANGE",
        "UNBOUNCE",
    }
)


def epoch_ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def event_view(row: dict[str, Any], account_id: int) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(row["id"]),
        "created": epoch_ms(row["created"]),
        "type": row["type"],
        "portalId": account_id,
    }
    if row["recipient"] is not None:
        view["recipient"] = row["recipient"]
    if row["email_campaign_id"] is not None:
        view["emailCampaignId"] = row["email_campaign_id"]
    if row["email_id"] is not None:
        view["emailId"] = row["email_id"]
    if row["smtp_token_id"] is not None:
        view["smtpTokenId"] = row["smtp_token_id"]
    if row["message_id"] is not None:
        view["hmid"] = row["message_id"]  # the X-Mailstream-ID of the message, as HubSpot's X-HubSpot-MID
    for key, value in (row.get("detail") or {}).items():
        view.setdefault(key, value)
    return view


def page_cursor(row: dict[str, Any]) -> str:
    """The `offset` that continues after this event: its created (epoch microseconds) and id."""
    micros = (row["created"] - EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{row['id']}"


def parse_page_cursor(offset: str | None) -> tuple[datetime, uuid.UUID] | None:
    """ValueError when malformed."""
    if not offset:
        return None
    micros, _, event_id = offset.partition("_")
    value = int(micros)
    if value < 0:
        raise ValueError(offset)
    return EPOCH + timedelta(microseconds=value), uuid.UUID(event_id)


def events_page_view(rows: list[dict[str, Any]], limit: int, account_id: int) -> dict[str, Any]:
    """rows: up to limit + 1 (one more means a next page)."""
    shown = rows[:limit]
    has_more = len(rows) > limit
    page: dict[str, Any] = {"events": [event_view(r, account_id) for r in shown], "hasMore": has_more}
    if has_more:
        page["offset"] = page_cursor(shown[-1])
    return page
