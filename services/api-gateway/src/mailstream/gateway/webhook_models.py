"""Request and response bodies of the webhooks API (docs/webhooks.md), and the views."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mailstream.gateway.models import Timestamp
from mailstream.gateway.views import iso
from mailstream.gateway.webhooks.events import EVENT_TYPES

EventType = Literal["delivered", "deferred", "bounced", "dropped", "opened", "clicked", "spam_report", "unsubscribed"]
assert set(EventType.__args__) == set(EVENT_TYPES)


class WebhookFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2048, description="http:// or https://")
    description: str | None = Field(default=None, max_length=255)
    eventTypes: list[EventType] | None = Field(default=None, min_length=1, max_length=len(EVENT_TYPES))
    enabled: bool | None = Field(default=None, description="false pauses it: events queue, sent on resume")


class WebhookCreate(WebhookFields):
    url: str = Field(min_length=1, max_length=2048, description="http:// or https://")
    eventTypes: list[EventType] = Field(
        default_factory=lambda: list(EVENT_TYPES), min_length=1, max_length=len(EVENT_TYPES)
    )


class WebhookView(BaseModel):
    id: str
    url: str
    description: str
    eventTypes: list[EventType]
    enabled: bool
    pendingEvents: int = Field(description="events queued, not yet delivered (retries included)")
    parkedEvents: int = Field(description="events given up on after the last retry")
    secretRotatedAt: Timestamp | None = None
    previousSecretExpiresAt: Timestamp | None = Field(
        default=None, description="until then the previous secret signs too (a second v1 signature)"
    )
    createdAt: Timestamp
    updatedAt: Timestamp


class WebhookCreated(WebhookView):
    secret: str = Field(description="the signing secret: shown this once (rotate-secret makes a new one)")


class WebhookPage(BaseModel):
    results: list[WebhookView]


class RotateSecret(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlapSeconds: float | None = Field(
        default=None, ge=0, le=7 * 86400, description="how long the old secret still signs (default 24 h)"
    )


class RotatedSecret(BaseModel):
    secret: str = Field(description="the new signing secret: shown this once")
    previousSecretExpiresAt: Timestamp


class DeliveryView(BaseModel):
    id: int
    attemptedAt: Timestamp
    kind: Literal["EVENTS", "TEST", "PARKED"]
    outcome: Literal["DELIVERED", "FAILED", "PARKED"]
    eventIds: list[str]
    attempt: int | None = None
    statusCode: int | None = None
    error: str | None = None
    durationMs: int | None = None
    responseExcerpt: str | None = None
    replayId: str | None = None


class DeliveryPage(BaseModel):
    results: list[DeliveryView]
    paging: dict[str, Any] | None = None


class ReplayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: Timestamp = Field(description="events recorded from this time on (ISO 8601)")
    until: Timestamp | None = Field(default=None, description="up to this time (default: now)")


class ReplayView(BaseModel):
    id: str
    webhookId: str
    since: Timestamp
    until: Timestamp
    state: Literal["PENDING", "RUNNING", "DONE"]
    events: int = Field(description="events queued again so far")
    createdAt: Timestamp
    finishedAt: Timestamp | None = None


class ReplayPage(BaseModel):
    results: list[ReplayView]


def webhook_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "description": row["description"],
        "eventTypes": list(row["event_types"]),
        "enabled": row["enabled"],
        "pendingEvents": row["pending"],
        "parkedEvents": row["parked"],
        "secretRotatedAt": iso(row["secret_rotated_at"]),
        "previousSecretExpiresAt": iso(row["previous_secret_expires_at"]),
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
    }


def delivery_view(row: dict[str, Any]) -> DeliveryView:
    return DeliveryView(
        id=row["id"],
        attemptedAt=iso(row["attempted_at"]),
        kind=row["kind"],
        outcome=row["outcome"],
        eventIds=list(row["event_ids"]),
        attempt=row["attempt"],
        statusCode=row["status_code"],
        error=row["error"],
        durationMs=row["duration_ms"],
        responseExcerpt=row["response_excerpt"],
        replayId=row["origin"] or None,
    )


def replay_view(row: dict[str, Any]) -> ReplayView:
    return ReplayView(
        id=row["id"],
        webhookId=row["endpoint_id"],
        since=iso(row["since"]),
        until=iso(row["until"]),
        state=row["state"],
        events=row["events"],
        createdAt=iso(row["created_at"]),
        finishedAt=iso(row["finished_at"]),
    )
