"""Click targets of indexed tracking links: an email version's static links, read through the
gateway's `email_version_links` view and cached (versions are immutable)."""

from __future__ import annotations

import asyncpg
from cachetools import LRUCache


class LinkTargets:
    def __init__(self, pool: asyncpg.Pool, capacity: int = 4096) -> None:
        self._pool = pool
        self._cache: LRUCache[tuple[int, int, int], tuple[str, ...]] = LRUCache(maxsize=capacity)

    async def target(self, account_id: int, email_id: int, version: int, index: int) -> str | None:
        key = (account_id, email_id, version)
        links = self._cache.get(key)
        if links is None:
            row = await self._pool.fetchrow(
                "SELECT links FROM email_version_links WHERE account_id = $1 AND email_id = $2 AND version = $3",
                account_id,
                email_id,
                version,
            )
            if row is None or row["links"] is None:
                return None
            links = self._cache[key] = tuple(row["links"])
        return links[index] if 0 <= index < len(links) else None
