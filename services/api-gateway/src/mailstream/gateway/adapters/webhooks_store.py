"""Webhook endpoints, their queue of events, the delivery log and replays (gateway-owned tables,
migration 0021). The API's queries are scoped by account_id; the dispatcher's read every account's.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

ENDPOINT_COLUMNS = """e.id::text AS id, e.account_id, e.url, e.description, e.event_types, e.enabled,
    e.secret_rotated_at, e.previous_secret_expires_at, e.created_at, e.updated_at"""
COUNTS = """(SELECT count(*) FROM webhook_queue q WHERE q.endpoint_id = e.id AND q.state = 'PENDING') AS pending,
    (SELECT count(*) FROM webhook_queue q WHERE q.endpoint_id = e.id AND q.state = 'PARKED') AS parked"""
WRITABLE = ("url", "description", "event_types", "enabled")


# --- the API ---------------------------------------------------------------------------------


async def create(
    pool: asyncpg.Pool, *, account_id: int, url: str, description: str, event_types: list[str], enabled: bool,
    secret: str,
) -> dict[str, Any]:  # fmt: skip
    row = await pool.fetchrow(
        f"""INSERT INTO webhook_endpoints AS e (id, account_id, url, description, event_types, enabled, secret)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {ENDPOINT_COLUMNS}, 0::bigint AS pending,
            0::bigint AS parked""",
        uuid.uuid4(), account_id, url, description, event_types, enabled, secret,
    )  # fmt: skip
    return dict(row)


async def list_all(pool: asyncpg.Pool, account_id: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {ENDPOINT_COLUMNS}, {COUNTS} FROM webhook_endpoints e WHERE e.account_id = $1 ORDER BY e.created_at",
        account_id,
    )
    return [dict(r) for r in rows]


async def get(pool: asyncpg.Pool, account_id: int, endpoint_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {ENDPOINT_COLUMNS}, {COUNTS} FROM webhook_endpoints e WHERE e.account_id = $1 AND e.id = $2",
        account_id, uuid.UUID(endpoint_id),
    )  # fmt: skip
    return dict(row) if row else None


async def update(pool: asyncpg.Pool, account_id: int, endpoint_id: str, changes: dict[str, Any]) -> bool:
    columns = [c for c in WRITABLE if c in changes]
    if not columns:
        return await get(pool, account_id, endpoint_id) is not None
    sets = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(columns))
    done = await pool.execute(
        f"UPDATE webhook_endpoints SET {sets}, updated_at = now() WHERE account_id = $1 AND id = $2",
        account_id, uuid.UUID(endpoint_id), *(changes[c] for c in columns),
    )  # fmt: skip
    return done != "UPDATE 0"


async def delete(pool: asyncpg.Pool, account_id: int, endpoint_id: str) -> bool:
    done = await pool.execute(
        "DELETE FROM webhook_endpoints WHERE account_id = $1 AND id = $2", account_id, uuid.UUID(endpoint_id)
    )
    return done != "DELETE 0"


async def rotate_secret(
    pool: asyncpg.Pool, account_id: int, endpoint_id: str, secret: str, overlap_s: float
) -> datetime | None:
    """The new secret signs from now on; the old one beside it for overlap_s. None: no such endpoint.
    Returns when the old secret stops signing."""
    return await pool.fetchval(
        """UPDATE webhook_endpoints SET previous_secret = CASE WHEN $4 > 0 THEN secret END,
               previous_secret_expires_at = CASE WHEN $4 > 0 THEN now() + make_interval(secs => $4) END,
               secret = $3, secret_rotated_at = now(), updated_at = now()
           WHERE account_id = $1 AND id = $2 RETURNING coalesce(previous_secret_expires_at, now())""",
        account_id, uuid.UUID(endpoint_id), secret, float(overlap_s),
    )  # fmt: skip


async def signing_target(pool: asyncpg.Pool, endpoint_id: str) -> dict[str, Any] | None:
    """The URL and the secrets in force (the current one first) of an endpoint."""
    row = await pool.fetchrow(
        """SELECT id::text AS id, account_id, url, enabled, secret,
                  CASE WHEN previous_secret_expires_at > now() THEN previous_secret END AS previous_secret
           FROM webhook_endpoints WHERE id = $1""",
        uuid.UUID(endpoint_id),
    )
    if row is None:
        return None
    target = dict(row)
    target["secrets"] = [s for s in (row["secret"], row["previous_secret"]) if s]
    return target


async def log_delivery(
    db: asyncpg.Pool | asyncpg.Connection, endpoint_id: str, *, kind: str, outcome: str, event_ids: Sequence[str],
    attempt: int | None = None, status_code: int | None = None, error: str | None = None,
    duration_ms: int | None = None, excerpt: str | None = None, origin: str = "",
) -> dict[str, Any]:  # fmt: skip
    row = await db.fetchrow(
        """INSERT INTO webhook_deliveries (endpoint_id, kind, outcome, event_ids, attempt, status_code, error,
               duration_ms, response_excerpt, origin) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           RETURNING *""",
        uuid.UUID(endpoint_id), kind, outcome, list(event_ids), attempt, status_code, error, duration_ms,
        excerpt or None, origin,
    )  # fmt: skip
    return dict(row)


async def deliveries(pool: asyncpg.Pool, endpoint_id: str, *, before: int | None, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT id, attempted_at, kind, outcome, event_ids, attempt, status_code, error, duration_ms,
                  response_excerpt, origin
           FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2::bigint IS NULL OR id < $2)
           ORDER BY id DESC LIMIT $3""",
        uuid.UUID(endpoint_id), before, limit,
    )  # fmt: skip
    return [dict(r) for r in rows]


REPLAY_COLUMNS = (
    "id::text AS id, endpoint_id::text AS endpoint_id, since, until, state, events, created_at, finished_at"
)


async def create_replay(pool: asyncpg.Pool, endpoint_id: str, since: datetime, until: datetime) -> dict[str, Any]:
    row = await pool.fetchrow(
        f"""INSERT INTO webhook_replays (id, endpoint_id, since, until) VALUES ($1, $2, $3, $4)
            RETURNING {REPLAY_COLUMNS}""",
        uuid.uuid4(), uuid.UUID(endpoint_id), since, until,
    )  # fmt: skip
    return dict(row)


async def replays(pool: asyncpg.Pool, endpoint_id: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"SELECT {REPLAY_COLUMNS} FROM webhook_replays WHERE endpoint_id = $1 ORDER BY created_at DESC LIMIT 100",
        uuid.UUID(endpoint_id),
    )
    return [dict(r) for r in rows]


# --- the dispatcher --------------------------------------------------------------------------


async def endpoints_of(db: asyncpg.Pool | asyncpg.Connection, account_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Every endpoint (enabled or paused: a paused one queues, and sends on resume) of these accounts."""
    rows = await db.fetch(
        """SELECT id::text AS id, account_id, event_types, created_at FROM webhook_endpoints
           WHERE account_id = ANY($1::bigint[])""",
        list(account_ids),
    )
    return [dict(r) for r in rows]


Queued = tuple[str, str, str, datetime, dict[str, Any]]  # endpoint id, event id, origin, occurred_at, payload


async def enqueue(db: asyncpg.Pool | asyncpg.Connection, items: Sequence[Queued]) -> int:
    """Queues the events; one already queued (same endpoint, event and origin) is left as it is."""
    if not items:
        return 0
    done = await db.execute(
        """INSERT INTO webhook_queue (endpoint_id, event_id, origin, occurred_at, payload)
           SELECT e, i, o, t, p::jsonb
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[]) AS u(e, i, o, t, p)
           ON CONFLICT (endpoint_id, event_id, origin) DO NOTHING""",
        [uuid.UUID(i[0]) for i in items], [i[1] for i in items], [i[2] for i in items], [i[3] for i in items],
        [json.dumps(i[4], separators=(",", ":")) for i in items],
    )  # fmt: skip
    return int(done.split()[-1])


async def due_endpoints(pool: asyncpg.Pool, limit: int) -> list[str]:
    rows = await pool.fetch(
        """SELECT DISTINCT q.endpoint_id::text AS id FROM webhook_queue q
           JOIN webhook_endpoints e ON e.id = q.endpoint_id AND e.enabled
           WHERE q.state = 'PENDING' AND q.next_attempt_at <= now() AND (q.lease_until IS NULL OR q.lease_until < now())
           LIMIT $1""",
        limit,
    )
    return [r["id"] for r in rows]


async def claim(pool: asyncpg.Pool, endpoint_id: str, *, limit: int, lease_s: float) -> list[dict[str, Any]]:
    """Up to `limit` due events of the endpoint, oldest first, leased for lease_s (another replica,
    or this one after a crash, takes them once the lease has passed)."""
    rows = await pool.fetch(
        """UPDATE webhook_queue SET lease_until = now() + make_interval(secs => $3)
           WHERE id IN (SELECT id FROM webhook_queue WHERE endpoint_id = $1 AND state = 'PENDING'
                        AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
                        ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
           RETURNING id, event_id, origin, attempts, payload::text AS payload""",
        uuid.UUID(endpoint_id), limit, float(lease_s),
    )  # fmt: skip
    return sorted((dict(r) for r in rows), key=lambda r: r["id"])


async def release(pool: asyncpg.Pool, ids: Sequence[int]) -> None:
    if ids:
        await pool.execute("UPDATE webhook_queue SET lease_until = NULL WHERE id = ANY($1::bigint[])", list(ids))


async def mark_delivered(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    await conn.execute(
        """UPDATE webhook_queue SET state = 'DELIVERED', payload = NULL, attempts = attempts + 1, lease_until = NULL,
               last_error = NULL, finished_at = now() WHERE id = ANY($1::bigint[])""",
        list(ids),
    )


async def mark_failed(
    conn: asyncpg.Connection, retry: Sequence[tuple[int, float]], parked: Sequence[int], error: str
) -> None:
    """`retry`: (id, seconds until the next attempt); `parked`: ids given up on, with the reason."""
    if retry:
        await conn.execute(
            """UPDATE webhook_queue q SET attempts = q.attempts + 1, lease_until = NULL, last_error = $3,
                   next_attempt_at = now() + make_interval(secs => u.delay)
               FROM unnest($1::bigint[], $2::float8[]) AS u(id, delay) WHERE q.id = u.id""",
            [r[0] for r in retry], [r[1] for r in retry], error,
        )  # fmt: skip
    if parked:
        await conn.execute(
            """UPDATE webhook_queue SET state = 'PARKED', attempts = attempts + 1, lease_until = NULL, last_error = $2,
                   finished_at = now() WHERE id = ANY($1::bigint[])""",
            list(parked), error,
        )  # fmt: skip


async def prune(pool: asyncpg.Pool, older_than_s: float) -> None:
    """Forgets delivered events' keys and the delivery log past the retention (parked events stay)."""
    await pool.execute(
        """DELETE FROM webhook_queue WHERE state = 'DELIVERED'
           AND finished_at < now() - make_interval(secs => $1)""",
        float(older_than_s),
    )
    await pool.execute(
        "DELETE FROM webhook_deliveries WHERE attempted_at < now() - make_interval(secs => $1)", float(older_than_s)
    )


async def claim_replay(pool: asyncpg.Pool, lease_s: float) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"""UPDATE webhook_replays SET state = 'RUNNING', lease_until = now() + make_interval(secs => $1)
            WHERE id = (SELECT id FROM webhook_replays WHERE state = 'PENDING'
                        OR (state = 'RUNNING' AND lease_until < now())
                        ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING {REPLAY_COLUMNS}""",
        float(lease_s),
    )
    return dict(row) if row else None


async def extend_replay(pool: asyncpg.Pool, replay_id: str, lease_s: float, events: int) -> None:
    await pool.execute(
        """UPDATE webhook_replays SET lease_until = now() + make_interval(secs => $2), events = $3 WHERE id = $1""",
        uuid.UUID(replay_id), float(lease_s), events,
    )  # fmt: skip


async def finish_replay(pool: asyncpg.Pool, replay_id: str, events: int) -> None:
    await pool.execute(
        "UPDATE webhook_replays SET state = 'DONE', events = $2, finished_at = now(), lease_until = NULL WHERE id = $1",
        uuid.UUID(replay_id), events,
    )  # fmt: skip


async def event_types_of(pool: asyncpg.Pool, endpoint_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT id::text AS id, account_id, event_types FROM webhook_endpoints WHERE id = $1", uuid.UUID(endpoint_id)
    )
    return dict(row) if row else None
