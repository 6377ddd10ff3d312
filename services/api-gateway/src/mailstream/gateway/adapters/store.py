"""Accounts, users and API keys. Every query that reads account data is scoped by account_id."""

from __future__ import annotations

from typing import Any

import asyncpg

from mailstream.gateway.keys import KeyGrant, hash_api_key
from mailstream.gateway.limits import RateSpec
from mailstream.gateway.scopes import ALL_SCOPES

KEY_COLUMNS = "id, key_prefix, name, created_by, created_at, revoked_at, scopes, rate_limit"


async def create_account(
    pool: asyncpg.Pool,
    name: str,
    api_key: str,
    user_email: str | None = None,
    *,
    scopes: frozenset[str] = ALL_SCOPES,
    rate_limit: RateSpec | None = None,
) -> int:
    async with pool.acquire() as conn, conn.transaction():
        account_id = await conn.fetchval("INSERT INTO accounts (name) VALUES ($1) RETURNING id", name)
        user_id = None
        if user_email:
            user_id = await conn.fetchval(
                "INSERT INTO users (account_id, email) VALUES ($1, $2) RETURNING id", account_id, user_email.lower()
            )
        await insert_api_key(
            conn, account_id, api_key, name="initial", created_by=user_id, scopes=scopes, rate_limit=rate_limit
        )
    return account_id


async def insert_api_key(
    conn: asyncpg.Connection | asyncpg.Pool,
    account_id: int,
    api_key: str,
    *,
    name: str,
    created_by: int | None,
    scopes: frozenset[str] = ALL_SCOPES,
    rate_limit: RateSpec | None = None,
) -> dict[str, Any]:
    row = await conn.fetchrow(
        f"""INSERT INTO api_keys (account_id, key_hash, key_prefix, name, created_by, scopes, rate_limit)
            VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}""",
        account_id,
        hash_api_key(api_key),
        api_key[:8],
        name,
        created_by,
        sorted(scopes),
        str(rate_limit) if rate_limit else None,
    )
    return dict(row)


async def grant_for_key(pool: asyncpg.Pool, api_key: str) -> KeyGrant | None:
    return await grant_for_key_hash(pool, hash_api_key(api_key))


async def grant_for_key_hash(pool: asyncpg.Pool, key_hash: bytes) -> KeyGrant | None:
    row = await pool.fetchrow(
        "SELECT account_id, id, scopes, rate_limit FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_hash
    )
    if row is None:
        return None
    limit = RateSpec.parse(row["rate_limit"]) if row["rate_limit"] else None
    return KeyGrant(row["account_id"], row["id"], frozenset(row["scopes"]), limit)


async def list_api_keys(pool: asyncpg.Pool, account_id: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        f"""SELECT {KEY_COLUMNS} FROM api_keys
            WHERE account_id = $1 ORDER BY id""",
        account_id,
    )
    return [dict(r) for r in rows]


async def revoke_api_key(pool: asyncpg.Pool, account_id: int, key_id: int) -> bool:
    done = await pool.fetchval(
        """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
           WHERE account_id = $1 AND id = $2 RETURNING true""",
        account_id,
        key_id,
    )
    return bool(done)


async def user_exists(pool: asyncpg.Pool, account_id: int, user_id: int) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT true FROM users WHERE account_id = $1 AND id = $2 AND removed_at IS NULL", account_id, user_id
        )
    )


async def create_user(pool: asyncpg.Pool, account_id: int, email: str, name: str) -> dict[str, Any] | None:
    """None when the account already has an active user with this email."""
    row = await pool.fetchrow(
        """INSERT INTO users (account_id, email, name) VALUES ($1, $2, $3)
           ON CONFLICT (account_id, email) WHERE removed_at IS NULL DO NOTHING
           RETURNING id, email, name, created_at""",
        account_id,
        email.lower(),
        name,
    )
    return dict(row) if row else None


async def list_users(pool: asyncpg.Pool, account_id: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, email, name, created_at FROM users WHERE account_id = $1 AND removed_at IS NULL ORDER BY id",
        account_id,
    )
    return [dict(r) for r in rows]


async def remove_user(pool: asyncpg.Pool, account_id: int, user_id: int) -> bool:
    done = await pool.fetchval(
        """UPDATE users SET removed_at = now() WHERE account_id = $1 AND id = $2 AND removed_at IS NULL
           RETURNING true""",
        account_id,
        user_id,
    )
    return bool(done)
