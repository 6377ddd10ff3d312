"""Signing a webhook POST (docs/webhooks.md, "Verifying a request"): the header

    Mailstream-Signature: t=<Unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>[,v1=...]

has one v1 per secret in force: two while a rotated secret's overlap lasts, so a receiver that
still checks the old secret (or already the new one) accepts the request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Iterable

HEADER = "Mailstream-Signature"
PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.urlsafe_b64encode(_secrets.token_bytes(32)).decode().rstrip("=")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets: Iterable[str], timestamp: int, body: bytes) -> str:
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets)])
