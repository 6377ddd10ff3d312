"""API keys: 256 random bits, shown once, stored as SHA-256.

A fast hash is right here (unlike passwords): the key is high-entropy, so it cannot be
guessed from its hash, and every request must check it cheaply.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from mailstream.gateway.limits import RateSpec

PREFIX = "ms_"


def new_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """What a valid API key allows: its account, its scopes and its request limit (None: the
    gateway's default)."""

    account_id: int
    key_id: int
    scopes: frozenset[str]
    rate_limit: RateSpec | None = None
