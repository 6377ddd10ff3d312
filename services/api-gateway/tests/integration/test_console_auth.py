"""Console sign-in on the real PostgreSQL: passwords set by `users set-password`'s function, sessions
kept as hashes, sign-out, expiry, a new password ending the sessions, the failed-sign-in throttle,
and a user's email in two accounts."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.gateway.adapters import store
from mailstream.gateway.console.auth import LOGIN_MAX_FAILURES, ConsoleAuth, session_hash, set_password
from mailstream.gateway.keys import new_api_key
from testkit import common_settings

DATABASE_URL = common_settings().database_url
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def pool():
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
    yield pool
    await pool.close()


async def new_user(pool, email: str | None = None) -> tuple[int, str]:
    email = email or f"ada-{uuid.uuid4().hex[:8]}@shop.example"
    account_id = await store.create_account(pool, f"console-{uuid.uuid4().hex[:6]}", new_api_key(), email)
    return account_id, email


async def test_a_user_signs_in_with_the_password_set_and_out_again(pool):
    account_id, email = await new_user(pool)
    auth = ConsoleAuth(pool, session_s=3600, failure_window_s=300)
    assert await auth.sign_in(email, PASSWORD) == (None, 0.0)  # no password yet
    assert await set_password(pool, email, PASSWORD) == [account_id]
    stored = await pool.fetchval("SELECT password_hash FROM users WHERE email = $1", email)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    assert await auth.sign_in(email, "wrong password!") == (None, 0.0)
    session_id, wait = await auth.sign_in(email.upper(), PASSWORD)  # emails are matched lower-cased
    assert session_id and wait == 0.0
    session = await auth.session(session_id)
    assert session.account_id == account_id and session.email == email and len(session.csrf_token) >= 43
    kept = await pool.fetch("SELECT id_hash FROM console_sessions WHERE account_id = $1", account_id)
    assert [r["id_hash"] for r in kept] == [session_hash(session_id)]  # only the hash is kept

    other_id, _ = await auth.sign_in(email, PASSWORD)
    assert (await auth.session(other_id)).csrf_token != session.csrf_token  # a token per session
    await auth.sign_out(session_id)
    assert await auth.session(session_id) is None and await auth.session(other_id) is not None
    assert await auth.session("not-a-session") is None and await auth.session(None) is None


async def test_an_expired_session_or_a_new_password_or_a_removed_user_ends_it(pool):
    account_id, email = await new_user(pool)
    await set_password(pool, email, PASSWORD)
    auth = ConsoleAuth(pool, session_s=3600, failure_window_s=300)
    first, _ = await auth.sign_in(email, PASSWORD)
    await pool.execute("UPDATE console_sessions SET expires_at = now() WHERE id_hash = $1", session_hash(first))
    assert await auth.session(first) is None

    second, _ = await auth.sign_in(email, PASSWORD)
    await set_password(pool, email, "another long password")
    assert await auth.session(second) is None
    assert await auth.sign_in(email, PASSWORD) == (None, 0.0)

    third, _ = await auth.sign_in(email, "another long password")
    await pool.execute("UPDATE users SET removed_at = now() WHERE account_id = $1", account_id)
    assert await auth.session(third) is None


async def test_failed_sign_ins_are_throttled_per_address(pool):
    _, email = await new_user(pool)
    await set_password(pool, email, PASSWORD)
    auth = ConsoleAuth(pool, session_s=3600, failure_window_s=300)
    for _ in range(LOGIN_MAX_FAILURES):
        assert await auth.sign_in(email, "a wrong guess") == (None, 0.0)
    session_id, wait = await auth.sign_in(email, PASSWORD)  # even the right password waits now
    assert session_id is None and 0 < wait <= 300
    _, other = await new_user(pool)
    await set_password(pool, other, PASSWORD)
    assert (await auth.sign_in(other, PASSWORD))[0]  # another address is not affected


async def test_an_email_in_two_accounts_needs_the_account_to_set_its_password(pool):
    email = f"ops-{uuid.uuid4().hex[:8]}@shop.example"
    first, _ = await new_user(pool, email)
    second, _ = await new_user(pool, email)
    assert await set_password(pool, email, PASSWORD) == [first, second]  # nothing changed
    assert await pool.fetchval("SELECT count(password_hash) FROM users WHERE email = $1", email) == 0
    assert await set_password(pool, email, PASSWORD, second) == [second]
    auth = ConsoleAuth(pool, session_s=3600, failure_window_s=300)
    session_id, _ = await auth.sign_in(email, PASSWORD)
    assert (await auth.session(session_id)).account_id == second
    assert await set_password(pool, "nobody@shop.example", PASSWORD) == []
