"""VERP return paths: each message's envelope sender names the message, signed, so a delivery
status notification (DSN) mailed back to it leads to that message, and a forged one to nothing.
The contract between the renderer (writes the address) and the tracker (reads the DSN).

    local part = "b-" base32(message id's 16 UUID bytes) base32(HMAC-SHA256(key, "rp." + those bytes)[:10])
    address    = local part "@" {return-path label}.{sending domain}

Lower-case base32 without padding (42 characters): receiving systems may change the case of a
local part, and some refuse characters other than letters, digits and '-'. The keys are the
link-signing keys; the first signs, every one verifies (the same rotation as tracking links).
A message id that is not a UUID gets no VERP address (the caller uses the plain one).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from mailstream.schemas.links import signing_keys

PREFIX = "b-"
MAC_BYTES = 10
_ID_CHARS = 26  # base32 of 16 bytes, unpadded
_MAC_CHARS = 16  # base32 of 10 bytes


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def _unb32(text: str) -> bytes:
    return base64.b32decode(text.upper() + "=" * (-len(text) % 8))


class ReturnPaths:
    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("at least one signing key is required")
        self._secrets = list(keys.values())

    @classmethod
    def from_setting(cls, entries: tuple[str, ...]) -> ReturnPaths:
        return cls(signing_keys(entries))

    def _mac(self, secret: bytes, message_bytes: bytes) -> bytes:
        return hmac.new(secret, b"rp." + message_bytes, hashlib.sha256).digest()[:MAC_BYTES]

    def local_part(self, message_id: str) -> str | None:
        """The VERP local part for a message, or None when its id is not a UUID."""
        try:
            message_bytes = uuid.UUID(message_id).bytes
        except ValueError:
            return None
        return PREFIX + _b32(message_bytes) + _b32(self._mac(self._secrets[0], message_bytes))

    def address(self, message_id: str, domain: str) -> str | None:
        local = self.local_part(message_id)
        return f"{local}@{domain}" if local else None

    def message_id(self, address: str) -> str | None:
        """The message a return-path address (or its local part) was made for; None if forged."""
        local = address.rpartition("@")[0] if "@" in address else address
        local = local.lower()
        if not local.startswith(PREFIX) or len(local) != len(PREFIX) + _ID_CHARS + _MAC_CHARS:
            return None
        try:
            message_bytes = _unb32(local[len(PREFIX) : len(PREFIX) + _ID_CHARS])
            mac = _unb32(local[len(PREFIX) + _ID_CHARS :])
        except ValueError:
            return None
        if any(hmac.compare_digest(mac, self._mac(s, message_bytes)) for s in self._secrets):
            return str(uuid.UUID(bytes=message_bytes))
        return None
