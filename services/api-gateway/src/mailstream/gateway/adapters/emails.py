"""Emails (templates) and their immutable versions. Every query is scoped by account_id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from mailstream.schemas.links import static_links


@dataclass(frozen=True, slots=True)
class EmailRow:
    id: int
    account_id: int
    name: str
    state: str
    single_send_api: bool
    current_version: int
    subject: str
    from_name: str
    from_email: str
    reply_to: list[str]
    html: str
    text_body: str | None
    subscription_type: str
    tracking: bool
    created_at: datetime
    updated_at: datetime
    published_at: datetime | None
    archived_at: datetime | None
    cloned_from: int | None
    automation: bool = False


EMAIL_COLUMNS = """e.id, e.account_id, e.name, e.state, e.single_send_api, e.current_version,
    v.subject, v.from_name, v.from_email, v.reply_to, v.html, v.text_body, v.subscription_type,
    v.tracking, e.created_at, e.updated_at, e.published_at, e.archived_at, e.cloned_from, e.automation"""
EMAIL_FROM = "FROM emails e JOIN email_versions v ON v.email_id = e.id AND v.version = e.current_version"
CONTENT = ("subject", "from_name", "from_email", "reply_to", "html", "text_body", "subscription_type", "tracking")


async def _insert_version(conn: asyncpg.Connection, email_id: int, version: int, content: dict[str, Any]) -> None:
    """The version with its static click targets (tracking links carry an index into them)."""
    await conn.execute(
        f"""INSERT INTO email_versions (email_id, version, links, {", ".join(CONTENT)})
            VALUES ($1, $2, $3, {", ".join(f"${i}" for i in range(4, 4 + len(CONTENT)))})""",
        email_id,
        version,
        list(static_links(content["html"] or "")),
        *(content[c] for c in CONTENT),
    )


async def create_email(
    pool: asyncpg.Pool, account_id: int, name: str, content: dict[str, Any], *, cloned_from: int | None = None
) -> EmailRow:
    async with pool.acquire() as conn, conn.transaction():
        email_id = await conn.fetchval(
            "INSERT INTO emails (account_id, name, cloned_from) VALUES ($1, $2, $3) RETURNING id",
            account_id,
            name,
            cloned_from,
        )
        await _insert_version(conn, email_id, 1, content)
    return await get_email(pool, account_id, email_id)


async def get_email(pool: asyncpg.Pool | asyncpg.Connection, account_id: int, email_id: int) -> EmailRow | None:
    row = await pool.fetchrow(
        f"SELECT {EMAIL_COLUMNS} {EMAIL_FROM} WHERE e.account_id = $1 AND e.id = $2", account_id, email_id
    )
    return EmailRow(**dict(row)) if row else None


async def list_emails(
    pool: asyncpg.Pool, account_id: int, *, after: int, limit: int, include_archived: bool, offset: int = 0
) -> list[EmailRow]:
    """The account's emails by id after the cursor (the API), or `offset` rows in (the console's pages)."""
    rows = await pool.fetch(
        f"""SELECT {EMAIL_COLUMNS} {EMAIL_FROM}
            WHERE e.account_id = $1 AND e.id > $2 AND ($3 OR e.state <> 'ARCHIVED')
            ORDER BY e.id LIMIT $4 OFFSET $5""",
        account_id,
        after,
        include_archived,
        limit,
        offset,
    )
    return [EmailRow(**dict(r)) for r in rows]


async def update_email(
    pool: asyncpg.Pool, account_id: int, email_id: int, name: str | None, changes: dict[str, Any]
) -> EmailRow | None:
    """A new immutable version with the changes applied; emails.current_version moves to it."""
    async with pool.acquire() as conn, conn.transaction():
        current = await conn.fetchrow(
            f"SELECT {EMAIL_COLUMNS} {EMAIL_FROM} WHERE e.account_id = $1 AND e.id = $2 FOR UPDATE OF e",
            account_id,
            email_id,
        )
        if current is None:
            return None
        if changes:
            content = {c: changes.get(c, current[c]) for c in CONTENT}
            version = current["current_version"] + 1
            await _insert_version(conn, email_id, version, content)
        else:
            version = current["current_version"]
        await conn.execute(
            """UPDATE emails SET current_version = $3, name = coalesce($4, name), updated_at = now()
               WHERE account_id = $1 AND id = $2""",
            account_id,
            email_id,
            version,
            name,
        )
    return await get_email(pool, account_id, email_id)


async def set_state(
    pool: asyncpg.Pool, account_id: int, email_id: int, *, from_states: tuple[str, ...], to: str
) -> bool:
    """Move an email to state `to` if it is in one of `from_states`; False if it was not."""
    stamp = {"PUBLISHED": "published_at", "ARCHIVED": "archived_at"}.get(to)
    extra = f", {stamp} = now()" if stamp else ""
    done = await pool.fetchval(
        f"""UPDATE emails SET state = $3, updated_at = now(){extra}
            WHERE account_id = $1 AND id = $2 AND state = ANY($4::text[]) RETURNING true""",
        account_id,
        email_id,
        to,
        list(from_states),
    )
    return bool(done)


async def convert_to_single_send_api(pool: asyncpg.Pool, account_id: int, email_id: int) -> bool:
    """Only a draft converts; False when the email is not a draft (any more)."""
    done = await pool.fetchval(
        """UPDATE emails SET single_send_api = true, updated_at = now()
           WHERE account_id = $1 AND id = $2 AND state = 'DRAFT' RETURNING true""",
        account_id,
        email_id,
    )
    return bool(done)


async def save_for_automation(pool: asyncpg.Pool, account_id: int, email_id: int) -> bool:
    """Only a draft is saved for automation; False when the email is not a draft (any more)."""
    done = await pool.fetchval(
        """UPDATE emails SET automation = true, updated_at = now()
           WHERE account_id = $1 AND id = $2 AND state = 'DRAFT' RETURNING true""",
        account_id,
        email_id,
    )
    return bool(done)
