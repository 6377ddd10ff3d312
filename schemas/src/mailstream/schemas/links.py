"""Signed, stateless tracking links: the contract between the renderer (signs) and the tracker
(verifies). A link carries everything an engagement event needs, so no database row per link.

    token = b64url(payload) "." key_id "." b64url(HMAC-SHA256(key, key_id "." payload)[:16])
    URL   = {tracking base}/{o|c|u}/{token}

Key rotation: the signer signs with its first key; the verifier accepts every key it holds,
so a new key is added first everywhere, then made first, and the old one dropped later.
A tampered payload, an unknown key id or a bad MAC verifies to None: no event, no redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum


class LinkKind(StrEnum):
    OPEN = "o"
    CLICK = "c"
    UNSUBSCRIBE = "u"


@dataclass(frozen=True, slots=True)
class TrackedLink:
    kind: LinkKind
    message_id: str
    account_id: int
    recipient: str
    email_id: int | None = None
    smtp_token_id: str | None = None
    url: str | None = None  # the click target; None for opens and unsubscribes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LinkSigner:
    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("at least one link-signing key is required")
        if any(not k or "." in k or ":" in k for k in keys):
            raise ValueError("key ids must be non-empty and contain neither '.' nor ':'")
        self._keys = dict(keys)
        self._active = next(iter(keys))

    @classmethod
    def from_setting(cls, entries: tuple[str, ...]) -> LinkSigner:
        """From MAILSTREAM_LINK_SIGNING_KEYS: "id:secret,id:secret", the first one signs."""
        keys = {}
        for entry in entries:
            key_id, sep, secret = entry.partition(":")
            if not sep or len(secret) < 16:
                raise ValueError(f"link-signing key {key_id!r} must be 'id:secret' with a secret of 16+ chars")
            keys[key_id] = secret.encode()
        return cls(keys)

    def signing_key(self) -> tuple[str, bytes]:
        """The key id and secret new links are signed with, for signers that precompute the
        HMAC state per message (the MAC input is `key_id + "." + payload`)."""
        return self._active, self._keys[self._active]

    def _mac(self, key_id: str, payload: str) -> bytes:
        return hmac.new(self._keys[key_id], f"{key_id}.{payload}".encode(), hashlib.sha256).digest()[:16]

    def token(self, link: TrackedLink) -> str:
        fields = [
            link.kind.value,
            link.message_id,
            link.account_id,
            link.recipient,
            link.email_id,
            link.smtp_token_id,
            link.url,
        ]
        payload = _b64(json.dumps(fields, separators=(",", ":")).encode())
        return f"{payload}.{self._active}.{_b64(self._mac(self._active, payload))}"

    def url(self, base_url: str, link: TrackedLink) -> str:
        return f"{base_url.rstrip('/')}/{link.kind.value}/{self.token(link)}"

    def verify(self, token: str) -> TrackedLink | None:
        try:
            payload, key_id, mac = token.split(".")
            if key_id not in self._keys or not hmac.compare_digest(_unb64(mac), self._mac(key_id, payload)):
                return None
            kind, message_id, account_id, recipient, email_id, smtp_token_id, url = json.loads(_unb64(payload))
            return TrackedLink(LinkKind(kind), message_id, int(account_id), recipient, email_id, smtp_token_id, url)
        except (ValueError, TypeError):
            return None
