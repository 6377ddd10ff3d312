"""Request and response bodies of the HTTP API (HubSpot field names)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class SingleSendMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    to: str = Field(min_length=3, max_length=320)
    from_: str | None = Field(default=None, alias="from", max_length=400)
    sendId: str | None = Field(default=None, min_length=1, max_length=255)
    replyTo: list[str] = Field(default_factory=list, max_length=10)
    cc: list[str] = Field(default_factory=list, max_length=50)
    bcc: list[str] = Field(default_factory=list, max_length=50)


class SingleSendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emailId: int = Field(ge=1)
    message: SingleSendMessage
    contactProperties: dict[str, str] = Field(default_factory=dict)
    customProperties: dict[str, Any] = Field(default_factory=dict)


class EmailCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    subject: str = Field(min_length=1, max_length=998)
    fromName: str = Field(default="", max_length=255)
    fromEmail: str = Field(min_length=3, max_length=320)
    replyTo: list[str] = Field(default_factory=list, max_length=10)
    html: str = Field(default="", max_length=2_000_000)
    text: str | None = Field(default=None, max_length=2_000_000)
    subscriptionType: Literal["TRANSACTIONAL", "MARKETING"] = "TRANSACTIONAL"
    tracking: bool = True
