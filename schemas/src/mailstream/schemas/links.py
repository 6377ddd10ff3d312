"""Signed, stateless tracking links: the contract between the renderer (signs) and the tracker
(verifies). A link carries everything an engagement event needs, so no database row per link.

    token = b64url(payload) "." key_id "." b64url(HMAC-SHA256(key, key_id "." b64url(payload))[:n])
    URL   = {tracking base}/{o|c|u}/{token}

Two payload formats verify; new links are written in format 2:
- format 2 (binary, 12-byte MAC): 0x02, kind, the message id's 16 UUID bytes, varints account id,
  email id + 1, email version + 1, link + 1 (0 = none), then recipient and SMTP token id as
  length-prefixed UTF-8, then the click target URL (the rest; empty for opens, unsubscribes and
  indexed clicks). The format byte's high bit (ANNOTATED) says the message carries custom_args
  or categories, which the tracker then looks up for the event (the link stays short). A click
  on a static link of an email version carries the link's index into
  that version's immutable `links` list (`static_links` below) instead of the URL: ~110
  characters a link instead of ~200, for a receipt's dozens of links.
- format 1 (JSON list, 16-byte MAC): links in mail delivered before format 2 keep working, and
  message ids that are not UUIDs are still written this way.

Key rotation: the signer signs with its first key; the verifier accepts every key it holds,
so a new key is added first everywhere, then made first, and the old one dropped later.
A tampered payload, an unknown key id or a bad MAC verifies to None: no event, no redirect.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

FORMAT_2 = 2
ANNOTATED = 0x80  # on the format byte: the message has custom_args or categories to look up
MAC_BYTES = {1: 16, FORMAT_2: 12}


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
    url: str | None = None  # the click target, when the link carries it (None for opens and unsubscribes)
    email_version: int | None = None
    link: int | None = None  # a click's index into the email version's `links`, instead of `url`
    annotated: bool = False  # the message has custom_args or categories (format 2 only)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _varint(n: int) -> bytes:
    if n < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _text(value: str | None) -> bytes:
    data = (value or "").encode()
    return _varint(len(data)) + data


def _optional(n: int | None) -> bytes:
    return _varint(0 if n is None else n + 1)


class _Reader:
    def __init__(self, data: bytes, at: int) -> None:
        self.data, self.at = data, at

    def varint(self) -> int:
        n = shift = 0
        while True:
            byte = self.data[self.at]  # IndexError on a truncated payload
            self.at += 1
            n |= (byte & 0x7F) << shift
            if byte < 0x80:
                return n
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def optional(self) -> int | None:
        n = self.varint()
        return None if n == 0 else n - 1

    def text(self) -> str:
        size = self.varint()
        end = self.at + size
        if end > len(self.data):
            raise ValueError("truncated text")
        value = self.data[self.at : end].decode()
        self.at = end
        return value

    def rest(self) -> str:
        value = self.data[self.at :].decode()
        self.at = len(self.data)
        return value


def _message_block(message_id: uuid.UUID, account_id: int, recipient: str, email_id, email_version, smtp_token_id):
    """The part of a format-2 payload that is the same for every link of one message."""
    return (
        message_id.bytes
        + _varint(account_id)
        + _optional(email_id)
        + _optional(email_version)
        + _text(recipient)
        + _text(smtp_token_id)
    )


def _uuid_or_none(text: str) -> uuid.UUID | None:
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return None
    return parsed if str(parsed) == text.lower() else None


def signing_keys(entries: tuple[str, ...]) -> dict[str, bytes]:
    """MAILSTREAM_LINK_SIGNING_KEYS ("id:secret,id:secret", the first one signs) as a dict."""
    keys = {}
    for entry in entries:
        key_id, sep, secret = entry.partition(":")
        if not sep or len(secret) < 16:
            raise ValueError(f"link-signing key {key_id!r} must be 'id:secret' with a secret of 16+ chars")
        keys[key_id] = secret.encode()
    return keys


class LinkSigner:
    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("at least one link-signing key is required")
        if any(not k or "." in k or ":" in k for k in keys):
            raise ValueError("key ids must be non-empty and contain neither '.' nor ':'")
        self._keys = dict(keys)
        self._active = next(iter(keys))
        # HMAC state keyed once; each MAC copies it (the key schedule is most of an HMAC's cost).
        self._keyed = {k: hmac.new(secret, f"{k}.".encode(), hashlib.sha256) for k, secret in keys.items()}

    @classmethod
    def from_setting(cls, entries: tuple[str, ...]) -> LinkSigner:
        """From MAILSTREAM_LINK_SIGNING_KEYS: "id:secret,id:secret", the first one signs."""
        return cls(signing_keys(entries))

    def _mac(self, key_id: str, payload: str, size: int) -> bytes:
        mac = self._keyed[key_id].copy()
        mac.update(payload.encode("ascii"))
        return mac.digest()[:size]

    def _sign(self, payload: str, size: int) -> str:
        return f"{payload}.{self._active}.{_b64(self._mac(self._active, payload, size))}"

    def token(self, link: TrackedLink) -> str:
        message_id = _uuid_or_none(link.message_id)
        if message_id is None:
            return self._token_v1(link)
        block = _message_block(
            message_id, link.account_id, link.recipient, link.email_id, link.email_version, link.smtp_token_id
        )
        return self._token_v2(link.kind, block, link.link, link.url, link.annotated)

    def _token_v2(self, kind: LinkKind, block: bytes, index: int | None, url: str | None, annotated: bool) -> str:
        return self._sign(_payload_v2(kind, block, index, url, annotated), MAC_BYTES[FORMAT_2])

    def _token_v1(self, link: TrackedLink) -> str:
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
        return self._sign(payload, MAC_BYTES[1])

    def url(self, base_url: str, link: TrackedLink) -> str:
        return f"{base_url.rstrip('/')}/{link.kind.value}/{self.token(link)}"

    def for_message(
        self,
        base_url: str,
        *,
        message_id: str,
        account_id: int,
        recipient: str,
        email_id: int | None = None,
        email_version: int | None = None,
        smtp_token_id: str | None = None,
        annotated: bool = False,
    ) -> MessageLinks:
        """The signer of one message's links: the per-message part of the payload is built once."""
        return MessageLinks(
            self,
            base_url.rstrip("/"),
            TrackedLink(
                LinkKind.OPEN,
                message_id,
                account_id,
                recipient,
                email_id,
                smtp_token_id,
                None,
                email_version,
                annotated=annotated,
            ),
        )

    def verify(self, token: str) -> TrackedLink | None:
        try:
            payload, key_id, mac = token.split(".")
            data = _unb64(payload)
            size = MAC_BYTES[FORMAT_2] if _is_v2(data) else MAC_BYTES[1]
            if key_id not in self._keys or not hmac.compare_digest(_unb64(mac), self._mac(key_id, payload, size)):
                return None
            return _parse_v2(data) if size == MAC_BYTES[FORMAT_2] else _parse_v1(data)
        except (ValueError, TypeError, IndexError, KeyError, UnicodeError):
            return None


def _is_v2(data: bytes) -> bool:
    return bool(data) and data[0] & ~ANNOTATED == FORMAT_2


def _payload_v2(kind: LinkKind, block: bytes, index: int | None, url: str | None, annotated: bool) -> str:
    head = bytes((FORMAT_2 | (ANNOTATED if annotated else 0), ord(kind.value)))
    return _b64(head + block + _optional(index) + (url or "").encode())


def unsigned_payload(link: TrackedLink) -> str:
    """The format-2 payload of a link, without key id and MAC (for tests that forge links)."""
    message_id = uuid.UUID(link.message_id)
    block = _message_block(
        message_id, link.account_id, link.recipient, link.email_id, link.email_version, link.smtp_token_id
    )
    return _payload_v2(link.kind, block, link.link, link.url, link.annotated)


def read_payload(payload: str) -> TrackedLink:
    """What a payload says, NOT verified (for tests that forge links); ValueError when unreadable."""
    data = _unb64(payload)
    try:
        return _parse_v2(data) if _is_v2(data) else _parse_v1(data)
    except (TypeError, IndexError, KeyError) as exc:
        raise ValueError(str(exc)) from exc


def _parse_v1(data: bytes) -> TrackedLink:
    kind, message_id, account_id, recipient, email_id, smtp_token_id, url = json.loads(data)
    return TrackedLink(LinkKind(kind), message_id, int(account_id), recipient, email_id, smtp_token_id, url)


def _parse_v2(data: bytes) -> TrackedLink:
    kind = LinkKind(chr(data[1]))
    message_id = str(uuid.UUID(bytes=data[2:18]))
    r = _Reader(data, 18)
    account_id, email_id, email_version = r.varint(), r.optional(), r.optional()
    recipient, smtp_token_id = r.text(), r.text() or None
    index, url = r.optional(), r.rest() or None
    annotated = bool(data[0] & ANNOTATED)
    return TrackedLink(
        kind, message_id, account_id, recipient, email_id, smtp_token_id, url, email_version, index, annotated
    )


class MessageLinks:
    """The signed links of one message, exactly as `LinkSigner.token` writes them, with the
    per-message part of the payload encoded once (a receipt has dozens of links)."""

    def __init__(self, signer: LinkSigner, base: str, who: TrackedLink) -> None:
        self._signer, self._base, self._who = signer, base, who
        message_id = _uuid_or_none(who.message_id)
        self._block = (
            None
            if message_id is None
            else _message_block(
                message_id, who.account_id, who.recipient, who.email_id, who.email_version, who.smtp_token_id
            )
        )

    def url(self, kind: LinkKind, *, link: int | None = None, target: str | None = None) -> str:
        if self._block is None:
            w = self._who
            fields = (kind, w.message_id, w.account_id, w.recipient, w.email_id, w.smtp_token_id, target)
            token = self._signer._token_v1(TrackedLink(*fields))
        else:
            token = self._signer._token_v2(kind, self._block, link, target, self._who.annotated)
        return f"{self._base}/{kind.value}/{token}"


# <a ... href="..."> or <area ...>, either quote; case-insensitive by hand (re.I is much slower here).
HREF = re.compile(r"""(<[aA](?:[rR][eE][aA])?\s(?:[^>]*?\s)?[hH][rR][eE][fF]\s*=\s*)(?:"([^"]*)"|'([^']*)')""")
_TEMPLATE_SYNTAX = ("{{", "{%", "{#")


def href_target(raw: str) -> str:
    """The URL an href attribute value as written in HTML points at."""
    return html.unescape(raw).strip()


def trackable(url: str) -> bool:
    return url.lower().startswith(("http://", "https://"))


def static_links(html_source: str) -> tuple[str, ...]:
    """The click targets an email version's HTML template names literally (no template syntax),
    in order of first appearance: the version's immutable link list. The gateway stores it with
    the version, the renderer signs a click on one of them as its index, the tracker resolves it."""
    seen: dict[str, None] = {}
    for match in HREF.finditer(html_source):
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        if any(s in raw for s in _TEMPLATE_SYNTAX):
            continue
        url = href_target(raw)
        if trackable(url):
            seen.setdefault(url, None)
    return tuple(seen)
