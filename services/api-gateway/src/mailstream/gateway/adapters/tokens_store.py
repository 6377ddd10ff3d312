"""PostgreSQL queries of the SMTP API: tokens, who created them, and the facts an SMTP message
is accepted with. Scoped by account_id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

TOKEN_COLUMNS = (
    "id, account_id, password_hash, campaign_name, email_campaign_id, create_contact, created_by, created_at"
)


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: str
    account_id: int
    password_hash: str
    campaign_name: str
    email_campaign_id: int
    create_contact: bool
    created_by: str
    created_at: datetime


async def creator_of_key(pool: asyncpg.Pool, account_id: int, key_hash: bytes) -> str | None:
    """A new token's `created_by`: the email of the user behind the API key when known (even one
    removed since), else the account's name; None when the account is gone."""
    return await pool.fetchval(
        """SELECT coalesce(u.email, a.name) FROM accounts a
           LEFT JOIN api_keys k ON k.account_id = a.id AND k.key_hash = $2
           LEFT JOIN users u ON u.id = k.created_by
           WHERE a.id = $1""",
        account_id,
        key_hash,
    )


async def create_token(
    pool: asyncpg.Pool,
    *,
    token_id: str,
    account_id: int,
    password_hash: str,
    campaign_name: str,
    create_contact: bool,
    created_by: str,
) -> TokenRow:
    row = await pool.fetchrow(
        f"""INSERT INTO smtp_tokens (id, account_id, password_hash, campaign_name, create_contact, created_by)
            VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TOKEN_COLUMNS}""",
        token_id,
        account_id,
        password_hash,
        campaign_name,
        create_contact,
        created_by,
    )
    return TokenRow(**dict(row))


async def get_token(pool: asyncpg.Pool | asyncpg.Connection, account_id: int, token_id: str) -> TokenRow | None:
    row = await pool.fetchrow(
        f"SELECT {TOKEN_COLUMNS} FROM smtp_tokens WHERE account_id = $1 AND id = $2", account_id, token_id
    )
    return TokenRow(**dict(row)) if row else None


async def token_by_id(pool: asyncpg.Pool | asyncpg.Connection, token_id: str) -> TokenRow | None:
    """For SMTP AUTH: the username alone names the token (and so its account)."""
    row = await pool.fetchrow(f"SELECT {TOKEN_COLUMNS} FROM smtp_tokens WHERE id = $1", token_id)
    return TokenRow(**dict(row)) if row else None


async def list_tokens(
    pool: asyncpg.Pool,
    account_id: int,
    *,
    after: int,
    limit: int,
    campaign_name: str | None,
    email_campaign_id: int | None,
    offset: int = 0,
) -> list[TokenRow]:
    """Up to limit+1 tokens after the cursor (or `offset` rows in: the console's pages), in creation
    order (the extra row means 'there is more')."""
    rows = await pool.fetch(
        f"""SELECT {TOKEN_COLUMNS} FROM smtp_tokens
            WHERE account_id = $1 AND email_campaign_id > $2
              AND ($3::text IS NULL OR campaign_name = $3)
              AND ($4::bigint IS NULL OR email_campaign_id = $4)
            ORDER BY email_campaign_id LIMIT $5 OFFSET $6""",
        account_id,
        after,
        campaign_name,
        email_campaign_id,
        limit + 1,
        offset,
    )
    return [TokenRow(**dict(r)) for r in rows]


async def delete_token(pool: asyncpg.Pool, account_id: int, token_id: str) -> bool:
    deleted = await pool.fetchval(
        "DELETE FROM smtp_tokens WHERE account_id = $1 AND id = $2 RETURNING true", account_id, token_id
    )
    return bool(deleted)


async def reset_password(pool: asyncpg.Pool, account_id: int, token_id: str, password_hash: str) -> TokenRow | None:
    row = await pool.fetchrow(
        f"""UPDATE smtp_tokens SET password_hash = $3, password_reset_at = now()
            WHERE account_id = $1 AND id = $2 RETURNING {TOKEN_COLUMNS}""",
        account_id,
        token_id,
        password_hash,
    )
    return TokenRow(**dict(row)) if row else None


async def token_and_domain(
    conn: asyncpg.Connection, token_id: str, domain: str, *, verified_only: bool
) -> tuple[TokenRow | None, bool]:
    """For DATA, in one round trip: the token as it is now, and whether the From domain is one of
    its account's sending domains."""
    row = await conn.fetchrow(
        f"""SELECT {TOKEN_COLUMNS}, EXISTS (
                SELECT 1 FROM sending_domains d WHERE d.account_id = t.account_id AND d.domain = $2
                AND (NOT $3 OR d.verified_at IS NOT NULL)) AS domain_ok
            FROM smtp_tokens t WHERE t.id = $1""",
        token_id,
        domain.lower(),
        verified_only,
    )
    if row is None:
        return None, False
    fields = dict(row)
    domain_ok = fields.pop("domain_ok")
    return TokenRow(**fields), domain_ok
