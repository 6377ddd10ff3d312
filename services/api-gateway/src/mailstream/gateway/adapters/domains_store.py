"""Sending domains and dedicated-pool assignments in PostgreSQL. Every query is scoped by account
id; the private key is written here and read only by the sender (view dkim_signing_keys)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

# Never the private key: nothing that reads a DomainRow can show it.
DOMAIN_COLUMNS = (
    "account_id, domain, dkim_selector, dkim_public_key, state, verified_at, failing_since, "
    "last_checked_at, record_checks, created_at"
)


@dataclass(frozen=True, slots=True)
class DomainRow:
    account_id: int
    domain: str
    dkim_selector: str
    dkim_public_key: str
    state: str
    verified_at: datetime | None
    failing_since: datetime | None
    last_checked_at: datetime | None
    record_checks: dict[str, dict[str, str]]  # kind -> {"status", "reason"}
    created_at: datetime


def _row(record: asyncpg.Record | None) -> DomainRow | None:
    if record is None:
        return None
    values = dict(record)
    values["record_checks"] = json.loads(values["record_checks"] or "{}")
    return DomainRow(**values)


async def insert_domain(
    pool: asyncpg.Pool, account_id: int, domain: str, *, selector: str, private_key: str, public_key: str
) -> DomainRow | None:
    """The new domain, or None when the account already has it."""
    return _row(
        await pool.fetchrow(
            f"""INSERT INTO sending_domains (account_id, domain, dkim_selector, dkim_private_key, dkim_public_key)
                VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, domain) DO NOTHING
                RETURNING {DOMAIN_COLUMNS}""",
            account_id,
            domain,
            selector,
            private_key,
            public_key,
        )
    )


async def get_domain(pool: asyncpg.Pool, account_id: int, domain: str) -> DomainRow | None:
    return _row(
        await pool.fetchrow(
            f"SELECT {DOMAIN_COLUMNS} FROM sending_domains WHERE account_id = $1 AND domain = $2", account_id, domain
        )
    )


async def list_domains(pool: asyncpg.Pool, account_id: int, *, after: str, limit: int) -> list[DomainRow]:
    """Up to `limit` domains after the cursor, by name."""
    rows = await pool.fetch(
        f"""SELECT {DOMAIN_COLUMNS} FROM sending_domains WHERE account_id = $1 AND domain > $2
            ORDER BY domain LIMIT $3""",
        account_id,
        after,
        limit,
    )
    return [_row(r) for r in rows]


async def delete_domain(pool: asyncpg.Pool, account_id: int, domain: str) -> bool:
    done = await pool.fetchval(
        "DELETE FROM sending_domains WHERE account_id = $1 AND domain = $2 RETURNING true", account_id, domain
    )
    return bool(done)


async def save_check(
    pool: asyncpg.Pool,
    account_id: int,
    domain: str,
    *,
    state: str,
    verified_at: datetime | None,
    failing_since: datetime | None,
    checked_at: datetime,
    record_checks: dict[str, dict[str, str]],
) -> DomainRow | None:
    return _row(
        await pool.fetchrow(
            f"""UPDATE sending_domains SET state = $3, verified_at = $4, failing_since = $5, last_checked_at = $6,
                       record_checks = $7::jsonb
                WHERE account_id = $1 AND domain = $2 RETURNING {DOMAIN_COLUMNS}""",
            account_id,
            domain,
            state,
            verified_at,
            failing_since,
            checked_at,
            json.dumps(record_checks),
        )
    )


async def has_verified_domain(pool: asyncpg.Pool, account_id: int) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM sending_domains WHERE account_id = $1 AND verified_at IS NOT NULL)",
            account_id,
        )
    )


async def due_for_recheck(
    pool: asyncpg.Pool, *, checked_before: datetime, limit: int, account_id: int | None = None
) -> list[DomainRow]:
    """Verified (or FAILING) domains last checked (or verified, if never checked) before the cutoff,
    oldest first; only one account's when account_id is given."""
    rows = await pool.fetch(
        f"""SELECT {DOMAIN_COLUMNS} FROM sending_domains
            WHERE verified_at IS NOT NULL AND coalesce(last_checked_at, verified_at) < $1
              AND ($3::bigint IS NULL OR account_id = $3)
            ORDER BY coalesce(last_checked_at, verified_at) LIMIT $2""",
        checked_before,
        limit,
        account_id,
    )
    return [_row(r) for r in rows]


# --- dedicated pools ----------------------------------------------------------------------------


async def assigned_pool(pool: asyncpg.Pool, account_id: int) -> str | None:
    return await pool.fetchval("SELECT pool FROM account_ip_pools WHERE account_id = $1", account_id)


async def assign_pool(pool: asyncpg.Pool, account_id: int, pool_name: str) -> None:
    await pool.execute(
        """INSERT INTO account_ip_pools (account_id, pool) VALUES ($1, $2)
           ON CONFLICT (account_id) DO UPDATE SET pool = excluded.pool, assigned_at = now()""",
        account_id,
        pool_name,
    )


async def unassign_pool(pool: asyncpg.Pool, account_id: int) -> bool:
    done = await pool.fetchval("DELETE FROM account_ip_pools WHERE account_id = $1 RETURNING true", account_id)
    return bool(done)


async def account_exists(pool: asyncpg.Pool, account_id: int) -> bool:
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)", account_id))
