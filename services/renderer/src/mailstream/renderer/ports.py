"""What the renderer's handlers need from the outside world, as small Protocols, and the rows
they get: tests pass in-memory fakes, bootstrap passes the PostgreSQL adapters.

Every lookup is batch-shaped: a batch of send requests asks for all its email versions, all its
recipients and all its accounts' pools at once (one query each, or none when cached).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from mailstream.renderer.pools import Pool
from mailstream.renderer.render import CompiledEmail, RenderFailed
from mailstream.renderer.return_path import ReturnPath
from mailstream.renderer.rules import RecipientStatus
from mailstream.renderer.tracking import Tracker
from mailstream.schemas import SubscriptionType

# (account id, email id, version) of an immutable email version
EmailKey = tuple[int, int, int]
# (account id, lower-cased address)
RecipientKey = tuple[int, str]


@dataclass(frozen=True, slots=True)
class EmailVersion:
    email_id: int
    version: int
    from_name: str
    from_email: str
    reply_to: tuple[str, ...]
    subscription_type: SubscriptionType
    tracking: bool
    compiled: CompiledEmail
    links: Mapping[str, int] = field(default_factory=dict)  # static click targets -> index in the version's list


class EmailStore(Protocol):
    async def load_many(self, keys: set[EmailKey]) -> dict[EmailKey, EmailVersion | RenderFailed | None]:
        """Each version compiled, RenderFailed when its templates do not compile, None when unknown."""
        ...


class RecipientStore(Protocol):
    async def statuses(self, keys: set[RecipientKey]) -> dict[RecipientKey, RecipientStatus]: ...


class AccountPools(Protocol):
    async def dedicated_many(self, account_ids: set[int]) -> dict[int, str | None]: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Ports:
    emails: EmailStore
    recipients: RecipientStore
    account_pools: AccountPools
    pools: dict[str, Pool]
    tracker: Tracker
    return_path: ReturnPath  # (message id, From address) -> the envelope sender
    clock: Clock = utcnow


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a batch of send requests needs from the database, looked up once per batch."""

    emails: Mapping[EmailKey, EmailVersion | RenderFailed | None]
    recipients: Mapping[RecipientKey, RecipientStatus]
    dedicated_pools: Mapping[int, str | None]
