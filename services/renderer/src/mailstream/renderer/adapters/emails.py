"""Email versions, read through the gateway's `render_email_versions` view and cached compiled.

Versions are immutable, so a cached entry never goes stale; the cache is bounded (LRU).
"""

from __future__ import annotations

import asyncpg
from cachetools import LRUCache

from mailstream.renderer.ports import EmailKey, EmailVersion
from mailstream.renderer.render import RenderFailed, compile_email
from mailstream.schemas import SubscriptionType

_VERSIONS = """
SELECT q.account_id, q.email_id, q.version, v.subject, v.from_name, v.from_email, v.reply_to, v.html, v.text_body,
       v.subscription_type, v.tracking, v.links
FROM unnest($1::bigint[], $2::bigint[], $3::int[]) AS q(account_id, email_id, version)
JOIN render_email_versions v ON v.account_id = q.account_id AND v.email_id = q.email_id AND v.version = q.version
"""


def _compiled(row: asyncpg.Record) -> EmailVersion | RenderFailed:
    try:
        compiled = compile_email(
            row["subject"], row["html"], row["text_body"], row["from_name"], tracking=row["tracking"]
        )
    except RenderFailed as exc:
        return exc
    return EmailVersion(
        email_id=row["email_id"],
        version=row["version"],
        from_name=row["from_name"],
        from_email=row["from_email"],
        reply_to=tuple(row["reply_to"]),
        subscription_type=SubscriptionType(row["subscription_type"]),
        tracking=row["tracking"],
        compiled=compiled,
        links={url: index for index, url in enumerate(row["links"] or ())},
    )


class EmailVersions:
    def __init__(self, pool: asyncpg.Pool, capacity: int = 2048) -> None:
        self._pool = pool
        self._cache: LRUCache[EmailKey, EmailVersion | RenderFailed] = LRUCache(maxsize=capacity)
        self.queries = 0  # round trips made (for tests and benchmarks)

    async def load_many(self, keys: set[EmailKey]) -> dict[EmailKey, EmailVersion | RenderFailed | None]:
        found: dict[EmailKey, EmailVersion | RenderFailed | None] = {}
        missing = []
        for key in keys:
            hit = self._cache.get(key)
            if hit is None:
                missing.append(key)
            else:
                found[key] = hit
        if missing:
            self.queries += 1
            rows = await self._pool.fetch(
                _VERSIONS, [k[0] for k in missing], [k[1] for k in missing], [k[2] for k in missing]
            )
            for row in rows:
                key = (row["account_id"], row["email_id"], row["version"])
                found[key] = self._cache[key] = _compiled(row)
            for key in missing:
                found.setdefault(key, None)  # unknown versions are not cached: they may be a moment early
        return found
