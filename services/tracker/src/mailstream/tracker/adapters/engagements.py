"""The tracker's engagement_firsts table: which recipients of which messages opened or clicked
as a person, to count the *_unique_human statistics once."""

from __future__ import annotations

import asyncpg

from mailstream.tracker.handlers import FirstKey

REMEMBER = """INSERT INTO engagement_firsts (kind, message_id, recipient)
              SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[])
              ON CONFLICT DO NOTHING RETURNING kind, message_id, recipient"""


async def remember_firsts(conn: asyncpg.Connection, keys: list[FirstKey]) -> set[FirstKey]:
    """The keys seen for the first time (distinct keys in, sorted for one lock order)."""
    if not keys:
        return set()
    ordered = sorted(keys, key=lambda k: (k[1], k[0], k[2]))
    rows = await conn.fetch(REMEMBER, [k[0] for k in ordered], [k[1] for k in ordered], [k[2] for k in ordered])
    return {(r["kind"], r["message_id"], r["recipient"]) for r in rows}
