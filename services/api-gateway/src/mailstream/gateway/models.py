"""Request and response bodies of the HTTP API (HubSpot field names, camelCase)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SubscriptionType = Literal["TRANSACTIONAL", "MARKETING"]
Address = Field(min_length=3, max_length=320)
MAX_ID = 2**63 - 1
# Responses carry ISO-8601 UTC strings with milliseconds, as HubSpot does.
Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
ObjectId = Annotated[int, Path(ge=1, le=MAX_ID)]


class SingleSendMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    to: str = Address
    from_: str | None = Field(default=None, alias="from", max_length=400)
    sendId: str | None = Field(default=None, min_length=1, max_length=255)
    replyTo: list[str] = Field(default_factory=list, max_length=10)
    cc: list[str] = Field(default_factory=list, max_length=50)
    bcc: list[str] = Field(default_factory=list, max_length=50)


class SingleSendRequest(BaseModel):
    """PublicSingleSendRequestEgg, plus mailstream's optional sendAt (schedule the send)."""

    model_config = ConfigDict(extra="forbid")

    emailId: int = Field(ge=1, le=2**63 - 1)
    message: SingleSendMessage
    contactProperties: dict[str, str] = Field(default_factory=dict)
    customProperties: dict[str, Any] = Field(default_factory=dict)
    sendAt: AwareDatetime | None = Field(default=None, description="mailstream extension: send at this time (UTC)")


class OneOffSendRequest(BaseModel):
    """A one-off send of any email (draft or published) to one contact, now or at sendAt."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    to: str = Address
    from_: str | None = Field(default=None, alias="from", max_length=400)
    sendId: str | None = Field(default=None, min_length=1, max_length=255)
    sendAt: AwareDatetime | None = None
    contactProperties: dict[str, str] = Field(default_factory=dict)
    customProperties: dict[str, Any] = Field(default_factory=dict)


class EventIdView(BaseModel):
    id: str
    created: Timestamp


class EmailSendStatusView(BaseModel):
    statusId: str
    status: Literal["PENDING", "PROCESSING", "CANCELED", "COMPLETE"]
    sendResult: str | None = None
    requestedAt: Timestamp | None = None
    startedAt: Timestamp | None = None
    completedAt: Timestamp | None = None
    eventId: EventIdView | None = None
    message: str | None = None


class EmailCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    subject: str = Field(min_length=1, max_length=998)
    fromName: str = Field(default="", max_length=255)
    fromEmail: str = Address
    replyTo: list[str] = Field(default_factory=list, max_length=10)
    html: str = Field(default="", max_length=2_000_000)
    text: str | None = Field(default=None, max_length=2_000_000, description="derived from html when absent")
    subscriptionType: SubscriptionType = "TRANSACTIONAL"
    tracking: bool = True


class EmailUpdate(BaseModel):
    """Fields to change; each update stores a new immutable version."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    subject: str | None = Field(default=None, min_length=1, max_length=998)
    fromName: str | None = Field(default=None, max_length=255)
    fromEmail: str | None = Field(default=None, min_length=3, max_length=320)
    replyTo: list[str] | None = Field(default=None, max_length=10)
    html: str | None = Field(default=None, max_length=2_000_000)
    text: str | None = Field(default=None, max_length=2_000_000)
    subscriptionType: SubscriptionType | None = None
    tracking: bool | None = None


class EmailView(BaseModel):
    emailId: int
    name: str
    state: Literal["DRAFT", "PUBLISHED", "ARCHIVED"]
    singleSendApi: bool
    savedForAutomation: bool = False
    version: int
    subject: str
    fromName: str
    fromEmail: str
    replyTo: list[str]
    html: str
    text: str | None
    subscriptionType: SubscriptionType
    tracking: bool
    createdAt: Timestamp
    updatedAt: Timestamp
    publishedAt: Timestamp | None = None
    archivedAt: Timestamp | None = None
    clonedFrom: int | None = None


class NextPage(BaseModel):
    after: str
    link: str | None = None


class Paging(BaseModel):
    next: NextPage


class EmailPage(BaseModel):
    results: list[EmailView]
    paging: Paging | None = None


class ContactUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    properties: dict[str, str] = Field(default_factory=dict)
    subscriptionStatus: Literal["SUBSCRIBED", "UNSUBSCRIBED", "NOT_SPECIFIED"] | None = None
    quarantined: bool | None = None
    doubleOptIn: Literal["CONFIRMED", "PENDING", "NOT_REQUIRED"] | None = None
    bounced: bool | None = None
    spamReported: bool | None = None


class ContactView(BaseModel):
    email: str
    properties: dict[str, str]
    subscriptionStatus: str
    quarantined: bool
    doubleOptIn: str
    bounced: bool
    spamReported: bool
    suppressions: list[str]
    createdAt: Timestamp
    updatedAt: Timestamp


class StatsView(BaseModel):
    scope: Literal["account", "email", "token", "trigger"]
    id: str
    sent: int
    delivered: int
    bounced: int
    dropped: int
    opens: int
    opensUniqueHuman: int
    opensMachine: int
    clicks: int
    clicksUniqueHuman: int
    clicksMachine: int
    spamReports: int
    unsubscribes: int
    openRate: float
    clickRate: float
    updatedAt: Timestamp | None = None


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Address
    name: str = Field(default="", max_length=255)


class UserView(BaseModel):
    id: int
    email: str
    name: str
    createdAt: Timestamp


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", max_length=255)
    userId: int | None = Field(default=None, ge=1, le=2**63 - 1)
    scopes: list[str] | None = Field(
        default=None,
        max_length=20,
        description="send, emails, tokens, contacts, stats, admin (or HubSpot's transactional-email, content, "
        "crm.objects.contacts.read/write); omitted = all",
    )
    rateLimit: str | None = Field(
        default=None, max_length=40, description="requests per interval, e.g. 100/10s; omitted = the gateway's default"
    )


class ApiKeyView(BaseModel):
    id: int
    name: str
    prefix: str
    createdBy: int | None = None
    createdAt: Timestamp
    revokedAt: Timestamp | None = None
    scopes: list[str] = Field(default_factory=list)
    rateLimit: str | None = None
    key: str | None = Field(default=None, description="the key itself: returned only when it is created")


class SmtpTokenCreate(BaseModel):
    """SmtpApiTokenRequestEgg: both fields required."""

    model_config = ConfigDict(extra="forbid")

    createContact: bool
    campaignName: str = Field(min_length=1, max_length=255)


class ErrorDetail(BaseModel):
    message: str
    # 'in' is a Python keyword: the JSON field is "in"
    in_: str | None = Field(default=None, alias="in")
    code: str | None = None
    context: dict[str, list[str]] | None = None


class ErrorBody(BaseModel):
    status: Literal["error"]
    message: str
    correlationId: str
    category: str
    errors: list[ErrorDetail] | None = None
    context: dict[str, list[str]] | None = Field(default=None, description='e.g. {"missingScopes": ["send"]}')
