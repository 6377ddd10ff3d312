"""Reads email versions from the gateway's tables (read-only) and caches them compiled.

Versions are immutable, so a cached entry never goes stale.
"""

from __future__ import annotations

from collections import OrderedDict

import asyncpg

from mailstream.renderer.handlers import EmailVersion
from mailstream.renderer.render import compile_email
from mailstream.schemas import SubscriptionType


class EmailVersions:
    def __init__(self, pool: asyncpg.Pool, capacity: int = 2048) -> None:
        self._pool = pool
        self._cache: OrderedDict[tuple[int, int], EmailVersion] = OrderedDict()
        self._capacity = capacity

    async def load(self, account_id: int, email_id: int, version: int) -> EmailVersion | None:
        key = (email_id, version)
        if (hit := self._cache.get(key)) is not None:
            self._cache.move_to_end(key)
            return hit
        row = await self._pool.fetchrow(
            """SELECT v.subject, v.from_name, v.from_email, v.reply_to, v.html, v.text_body,
                      v.subscription_type, v.tracking
               FROM email_versions v JOIN emails e ON e.id = v.email_id
               WHERE e.account_id = $1 AND v.email_id = $2 AND v.version = $3""",
            account_id,
            email_id,
            version,
        )
        if row is None:
            return None
        entry = EmailVersion(
            email_id=email_id,
            version=version,
            from_name=row["from_name"],
            from_email=row["from_email"],
            reply_to=tuple(row["reply_to"]),
            subscription_type=SubscriptionType(row["subscription_type"]),
            tracking=row["tracking"],
            compiled=compile_email(row["subject"], row["html"], row["text_body"], row["from_name"]),
        )
        self._cache[key] = entry
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return entry
