"""Console sign-in: user passwords (argon2id), sessions (a random id in a cookie, its SHA-256 in
PostgreSQL), the per-session CSRF token, and the cookie flags.

- The session id carries 256 random bits; the database keeps only its SHA-256, so a read of
  console_sessions does not give a usable cookie.
- Every POST form carries the session's CSRF token (a hidden field), compared in constant time.
  The sign-in form, before any session, uses a double-submit cookie instead.
- Cookies are HttpOnly, SameSite=Lax, Path=/console, and Secure when the request came over https
  (or always, with MAILSTREAM_CONSOLE_COOKIE_SECURE).
- Failed sign-ins are counted per address in the gateway's auth-failure table (the SMTP AUTH
  throttle's, with its window: each claim purges older rows, so both must use one window), so a
  password cannot be guessed quickly, whichever replica is asked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from mailstream.gateway import passwords
from mailstream.gateway.adapters.auth_failures import PgAuthFailures

SESSION_COOKIE = "mailstream_console"
LOGIN_COOKIE = "mailstream_console_login"  # the sign-in form's double-submit CSRF token
COOKIE_PATH = "/console"
TOKEN_BYTES = 32
LOGIN_MAX_FAILURES = 10  # per address, in the SMTP AUTH throttle's window (they share its table and purge)
MIN_PASSWORD_LENGTH = 12


@dataclass(frozen=True, slots=True)
class Session:
    user_id: int
    account_id: int
    email: str
    account_name: str
    csrf_token: str


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def session_hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; an absent or empty token never matches."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def cookie_flags(*, https: bool, always_secure: bool, max_age: int | None) -> dict[str, object]:
    """Keyword arguments of Response.set_cookie for a console cookie."""
    flags: dict[str, object] = {
        "httponly": True,
        "samesite": "lax",
        "secure": https or always_secure,
        "path": COOKIE_PATH,
    }
    if max_age is not None:
        flags["max_age"] = max_age
    return flags


def password_problem(password: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a console password needs at least {MIN_PASSWORD_LENGTH} characters"
    return None


class ConsoleAuth:
    """Sessions and passwords in PostgreSQL (users and console_sessions, both the gateway's)."""

    def __init__(self, pool: asyncpg.Pool, *, session_s: float, failure_window_s: float) -> None:
        self.pool = pool
        self.session_s = session_s
        self.failures = PgAuthFailures(pool, max_failures=LOGIN_MAX_FAILURES, window_s=failure_window_s)

    async def sign_in(self, email: str, password: str) -> tuple[str | None, float]:
        """(new session id, 0) when a user of some account has this email and password; (None, 0)
        when not; (None, seconds to wait) when the address failed too often recently."""
        address = email.strip().lower()
        wait = await self.failures.claim(f"console:{address}")
        if wait:
            return None, wait
        rows = await self.pool.fetch(
            """SELECT id, account_id, password_hash FROM users
               WHERE email = $1 AND removed_at IS NULL AND password_hash IS NOT NULL ORDER BY id""",
            address,
        )
        found = None
        for row in rows or [{"id": None, "account_id": None, "password_hash": None}]:
            if await asyncio.to_thread(passwords.verify_password, row["password_hash"], password):
                found = row
                break
        if found is None:
            return None, 0.0
        await self.failures.release(f"console:{address}")
        session_id = new_token()
        await self.pool.execute(
            """INSERT INTO console_sessions (id_hash, user_id, account_id, csrf_token, expires_at)
               VALUES ($1, $2, $3, $4, $5)""",
            session_hash(session_id),
            found["id"],
            found["account_id"],
            new_token(),
            datetime.now(UTC) + timedelta(seconds=self.session_s),
        )
        await self.pool.execute("DELETE FROM console_sessions WHERE expires_at < now()")
        return session_id, 0.0

    async def session(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        row = await self.pool.fetchrow(
            """SELECT s.user_id, s.account_id, u.email, a.name AS account_name, s.csrf_token
               FROM console_sessions s JOIN users u ON u.id = s.user_id JOIN accounts a ON a.id = s.account_id
               WHERE s.id_hash = $1 AND s.expires_at > now() AND u.removed_at IS NULL""",
            session_hash(session_id),
        )
        return Session(**dict(row)) if row else None

    async def sign_out(self, session_id: str | None) -> None:
        if session_id:
            await self.pool.execute("DELETE FROM console_sessions WHERE id_hash = $1", session_hash(session_id))


async def set_password(pool: asyncpg.Pool, email: str, password: str, account_id: int | None = None) -> list[int]:
    """Sets the console password of the user with this email (in `account_id`, or in the one
    account that has such a user) and ends its sessions. Returns the matching users' accounts:
    nothing was changed unless exactly one matched."""
    rows = await pool.fetch(
        """SELECT id, account_id FROM users WHERE email = $1 AND removed_at IS NULL
           AND ($2::bigint IS NULL OR account_id = $2) ORDER BY account_id""",
        email.strip().lower(),
        account_id,
    )
    if len(rows) == 1:
        password_hash = await asyncio.to_thread(passwords.hash_password, password)
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", rows[0]["id"], password_hash)
            await conn.execute("DELETE FROM console_sessions WHERE user_id = $1", rows[0]["id"])
    return [r["account_id"] for r in rows]
