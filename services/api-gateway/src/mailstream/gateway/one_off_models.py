"""Request and response bodies of one-off sends to many contacts (mailstream API, camelCase)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from mailstream.gateway.models import MAX_ID, Paging, Timestamp

MAX_ADDRESSES = 10_000


class PropertyFilterIn(BaseModel):
    """EQ: the property equals value; IN: it equals one of values; HAS_PROPERTY: the contact has it."""

    model_config = ConfigDict(extra="forbid")

    property: str = Field(min_length=1, max_length=255)
    operator: Literal["EQ", "IN", "HAS_PROPERTY"]
    value: str | None = Field(default=None, max_length=10_000)
    values: list[str] | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _operands(self) -> PropertyFilterIn:
        if self.operator == "EQ" and (self.value is None or self.values is not None):
            raise ValueError("EQ takes `value` (and no `values`)")
        if self.operator == "IN" and (self.values is None or self.value is not None):
            raise ValueError("IN takes `values` (and no `value`)")
        if self.operator == "HAS_PROPERTY" and (self.value is not None or self.values is not None):
            raise ValueError("HAS_PROPERTY takes neither `value` nor `values`")
        return self


class AudienceIn(BaseModel):
    """Exactly one of: addresses (a list), allContacts (true), filters (contacts whose properties
    match every filter)."""

    model_config = ConfigDict(extra="forbid")

    addresses: list[str] | None = Field(default=None, min_length=1, max_length=MAX_ADDRESSES)
    allContacts: bool | None = None
    filters: list[PropertyFilterIn] | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _exactly_one(self) -> AudienceIn:
        given = [self.addresses is not None, bool(self.allContacts), self.filters is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of addresses, allContacts (true) or filters")
        return self


class OneOffSendCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emailId: int = Field(ge=1, le=MAX_ID)
    audience: AudienceIn
    sendAt: AwareDatetime | None = Field(default=None, description="start the fan-out at this time (UTC)")
    customProperties: dict[str, Any] = Field(default_factory=dict)
    idempotencyKey: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="a repeated create with the same key returns the first one-off send and sends nothing again "
        "(also accepted as the Idempotency-Key header)",
    )


class SkippedView(BaseModel):
    total: int
    byReason: dict[str, int]


class ProgressView(BaseModel):
    targeted: int | None
    processed: int
    accepted: int
    sent: int
    failed: int
    pending: int
    skipped: SkippedView


class OneOffSendView(BaseModel):
    id: str
    emailId: int
    emailVersion: int
    audience: dict[str, Any]
    state: Literal["SCHEDULED", "QUEUED", "SENDING", "DONE", "CANCELED"]
    idempotencyKey: str | None = None
    sendAt: Timestamp | None = None
    createdAt: Timestamp
    startedAt: Timestamp | None = None
    completedAt: Timestamp | None = None
    canceledAt: Timestamp | None = None
    progress: ProgressView


class OneOffSendPage(BaseModel):
    results: list[OneOffSendView]
    paging: Paging | None = None
