"""SMTP API tokens, pure logic: ids, passwords, argon2 hashing, AUTH throttling, JSON views.

The token id is the SMTP username (not a secret, but unguessable). The password carries 192
random bits, is shown once and stored as an argon2id hash: unlike API keys it is typed into
third-party SMTP clients' configuration, so it gets a slow, salted hash.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from mailstream.schemas.counters import COUNTERS

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
ID_LENGTH = 14  # ~72 bits
PASSWORD_BYTES = 24  # 192 bits, >= 128 required

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)
# Verified against when the token id is unknown, so an unknown id costs as much as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(PASSWORD_BYTES))


def new_token_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the hash exists; never raises on a bad password or hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class VerifiedCache:
    """Remembers (stored hash, password digest) pairs that verified, so a client that opens a
    connection per message does not pay argon2 every time. Keyed by the stored hash: a
    password reset replaces the hash, so the old password misses the cache and fails at once."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[str, bytes], None] = OrderedDict()

    @staticmethod
    def _key(password_hash: str, password: str) -> tuple[str, bytes]:
        return password_hash, hashlib.sha256(password.encode()).digest()

    def hit(self, password_hash: str, password: str) -> bool:
        key = self._key(password_hash, password)
        if key in self._entries:
            self._entries.move_to_end(key)
            return True
        return False

    def add(self, password_hash: str, password: str) -> None:
        self._entries[self._key(password_hash, password)] = None
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class AuthThrottle:
    """Failed AUTH attempts per client address in a sliding window; past the limit, refuse."""

    def __init__(self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        now = self.clock()
        q = self._failures.get(address)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if not q:
            del self._failures[address]
        return q

    def retry_after(self, address: str) -> float:
        """0 when the address may try; else the seconds until its oldest failure leaves the window."""
        q = self._recent(address)
        if len(q) < self.max_failures:
            return 0.0
        return max(0.0, self.window_s - (self.clock() - q[0]))

    def failed(self, address: str) -> None:
        self._recent(address)
        self._failures.setdefault(address, deque()).append(self.clock())
        if len(self._failures) > 100_000:  # bound memory under a spray of addresses
            self._failures.pop(next(iter(self._failures)))

    def forgive(self, address: str) -> None:
        """Takes back the latest failure: an attempt is counted as failed while it is checked, so
        that parallel guesses cannot all pass the limit before any of them has failed."""
        q = self._failures.get(address)
        if q:
            q.pop()


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    account_id: int
    password_hash: str
    campaign_name: str
    email_campaign_id: int
    create_contact: bool
    created_by: str
    created_at: datetime


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token_view(token: TokenRow, password: str | None = None) -> dict[str, Any]:
    """SmtpApiTokenView; `password` only on create and password-reset."""
    view: dict[str, Any] = {"id": token.id}
    if password is not None:
        view["password"] = password
    view.update(
        createdBy=token.created_by,
        emailCampaignId=str(token.email_campaign_id),
        createdAt=iso(token.created_at),
        createContact=token.create_contact,
        campaignName=token.campaign_name,
    )
    return view


def page_view(tokens: list[TokenRow], limit: int, link: Callable[[str], str]) -> dict[str, Any]:
    """CollectionResponseSmtpApiTokenViewForwardPaging: `tokens` holds up to limit+1 rows."""
    body: dict[str, Any] = {"results": [token_view(t) for t in tokens[:limit]]}
    if len(tokens) > limit:
        after = str(tokens[limit - 1].email_campaign_id)
        body["paging"] = {"next": {"after": after, "link": link(after)}}
    return body


def parse_cursor(after: str | None) -> int:
    """The `after` cursor is the last listed token's emailCampaignId; ValueError when malformed."""
    if after is None or after == "":
        return 0
    value = int(after)
    if value < 0:
        raise ValueError(after)
    return value


def statistics_view(token: TokenRow, stats: dict[str, Any] | None) -> dict[str, Any]:
    """The token's counters from the tracker's `stats` row (zeros before the first event) and rates."""
    s = {c: int((stats or {}).get(c) or 0) for c in COUNTERS}
    delivered = s["delivered"]
    return {
        "tokenId": token.id,
        "emailCampaignId": str(token.email_campaign_id),
        "campaignName": token.campaign_name,
        "counters": {
            "sent": s["sent"],
            "delivered": s["delivered"],
            "bounced": s["bounced"],
            "dropped": s["dropped"],
            "opens": s["opens_total"],
            "uniqueOpens": s["opens_unique_human"],
            "machineOpens": s["opens_machine"],
            "clicks": s["clicks_total"],
            "uniqueClicks": s["clicks_unique_human"],
            "machineClicks": s["clicks_machine"],
            "spamReports": s["spam_reports"],
            "unsubscribes": s["unsubscribes"],
        },
        "ratios": {
            "openRate": round(s["opens_unique_human"] / delivered, 4) if delivered else 0.0,
            "clickRate": round(s["clicks_unique_human"] / delivered, 4) if delivered else 0.0,
        },
        "updatedAt": iso(stats["updated_at"]) if stats and stats.get("updated_at") else None,
    }
