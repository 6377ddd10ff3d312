"""SMTP token credentials: the id (the SMTP username), the password, its argon2id hash, and the
cache of passwords that verified.

The token id is not a secret, but unguessable. The password carries 192 random bits, is shown
once and stored as an argon2id hash: unlike API keys (keys.py) it is typed into third-party SMTP
clients' configuration, so it gets a slow, salted hash.
"""

from __future__ import annotations

import functools
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import LRUCache

ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
ID_LENGTH = 14  # ~72 bits
PASSWORD_BYTES = 24  # 192 bits, >= 128 required
# ~1.6 MB: more (token, password) pairs than one gateway's clients use at once; a miss costs one argon2 verify.
VERIFIED_CACHE_SIZE = 4096


def new_token_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4)


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the token id is unknown, so an unknown id costs as much as a wrong
    password; computed on first use, not at import (one argon2 hash, ~50 ms)."""
    return _hasher().hash(secrets.token_urlsafe(PASSWORD_BYTES))


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant work whether or not the hash exists; never raises on a bad password or hash."""
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class VerifiedCache:
    """Remembers (stored hash, password digest) pairs that verified, so a client that opens a
    connection per message does not pay argon2 every time. Keyed by the stored hash: a
    password reset replaces the hash, so the old password misses the cache and fails at once.
    Used on the event loop only (cachetools caches are not thread-safe)."""

    def __init__(self, *, size: int = VERIFIED_CACHE_SIZE) -> None:
        self.size = size
        self._entries: LRUCache[tuple[str, bytes], bool] = LRUCache(maxsize=size)

    @staticmethod
    def _key(password_hash: str, password: str) -> tuple[str, bytes]:
        return password_hash, hashlib.sha256(password.encode()).digest()

    def hit(self, password_hash: str, password: str) -> bool:
        # get(), not `in`: only a lookup marks the entry recently used
        return self._entries.get(self._key(password_hash, password), False)

    def add(self, password_hash: str, password: str) -> None:
        self._entries[self._key(password_hash, password)] = True
