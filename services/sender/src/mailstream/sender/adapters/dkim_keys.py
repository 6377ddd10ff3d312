"""DKIM keys of the gateway-owned sending_domains table, cached; signing with dkimpy."""

from __future__ import annotations

import time

import asyncpg
import dkim

SIGNED_HEADERS = [
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
]


class DkimKeys:
    """(account, domain) -> (selector, private key PEM) of a verified sending domain, or None.
    Cached for `ttl` seconds, misses too, so a domain verified later is picked up."""

    def __init__(self, pool: asyncpg.Pool, *, ttl: float = 300.0) -> None:
        self._pool = pool
        self._ttl = ttl
        self._cache: dict[tuple[int, str], tuple[float, tuple[bytes, bytes] | None]] = {}

    async def key(self, account_id: int, domain: str) -> tuple[bytes, bytes] | None:
        cache_key = (account_id, domain.lower())
        hit = self._cache.get(cache_key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        row = await self._pool.fetchrow(
            """SELECT dkim_selector, dkim_private_key FROM sending_domains
               WHERE account_id = $1 AND lower(domain) = $2 AND verified_at IS NOT NULL""",
            account_id,
            domain.lower(),
        )
        value = (row["dkim_selector"].encode(), row["dkim_private_key"].encode()) if row else None
        self._cache[cache_key] = (now + self._ttl, value)
        return value


def sign(mime: bytes, *, domain: str, selector: bytes, private_key: bytes) -> bytes:
    """The message with a DKIM-Signature header (relaxed/relaxed, rsa-sha256) prepended."""
    present = {line.split(b":", 1)[0].strip().lower() for line in mime.split(b"\r\n\r\n", 1)[0].split(b"\r\n")}
    headers = [h for h in SIGNED_HEADERS if h in present] or [b"from"]
    signature = dkim.sign(
        mime,
        selector,
        domain.encode(),
        private_key,
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=headers,
    )
    return signature + mime
