"""SMTP AUTH PLAIN and LOGIN against SMTP tokens: username = token id, password = token password.

aiosmtpd calls a handler's `auth_<MECHANISM>(server, args)` coroutine in place of its own, which
lets the check be asynchronous (database, argon2 in a thread). Failures are counted per client
address; past the limit the address gets 454 without its credentials being checked.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
from base64 import b64decode
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiosmtpd.smtp import MISSING, SMTP, AuthResult
from prometheus_client import Counter

from mailstream.gateway.adapters.tokens_store import TokenRow
from mailstream.gateway.passwords import VerifiedCache, verify_password
from mailstream.gateway.smtp.throttle import FailureLedger

log = logging.getLogger("mailstream.gateway.smtp")
AUTH_RESULTS = Counter("mailstream_gateway_smtp_auth_total", "SMTP AUTH attempts", ["result"])

LoadToken = Callable[[str], Awaitable[TokenRow | None]]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a session authenticated as; DATA re-checks the token still has this password hash."""

    token_id: str
    account_id: int
    password_hash: str


class TokenAuthenticator:
    def __init__(self, *, load_token: LoadToken, throttle: FailureLedger, cache: VerifiedCache | None = None) -> None:
        self.load_token, self.throttle = load_token, throttle
        self.cache = cache or VerifiedCache()

    async def check(self, client: str, username: str, password: str) -> tuple[Principal | None, str | None]:
        """(principal, None) on success; (None, reply) on failure, the reply to send."""
        wait = await self.throttle.claim(client)  # counted as failed until proven right (released below)
        if wait > 0:
            AUTH_RESULTS.labels("throttled").inc()
            return None, f"454 4.7.0 Too many failed authentication attempts from {client}; retry in {int(wait) + 1} s"
        token = await self.load_token(username) if username else None
        ok = False
        if token is not None and self.cache.hit(token.password_hash, password):
            ok = True
        else:
            ok = await asyncio.to_thread(verify_password, token.password_hash if token else None, password)
            if ok and token is not None:
                self.cache.add(token.password_hash, password)
        if not ok or token is None:
            AUTH_RESULTS.labels("failed").inc()
            # The username is logged only when it is a token id: clients swap the fields, and a
            # password must never reach a log.
            who = {"token_id": token.id} if token is not None else {"username": "(not a token id)"}
            log.info("smtp auth failed", extra={"fields": {"client": client, **who}})
            return None, "535 5.7.8 Authentication credentials invalid"
        await self.throttle.release(client)
        AUTH_RESULTS.labels("ok").inc()
        return Principal(token.id, token.account_id, token.password_hash), None


async def _decode(server: SMTP, blob: str) -> bytes | None:
    try:
        return b64decode(blob.encode(), validate=True)
    except (binascii.Error, ValueError):
        await server.push("501 5.5.2 Can't decode base64")
        return None


class AuthMechanisms:
    """Mixed into the SMTP handler: aiosmtpd finds `auth_PLAIN` and `auth_LOGIN` on it."""

    authenticator: TokenAuthenticator

    async def _finish(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        assert server.session is not None
        client = server.session.peer[0] if isinstance(server.session.peer, tuple) else str(server.session.peer)
        principal, reply = await self.authenticator.check(
            client, login.decode("utf-8", "replace").strip(), password.decode("utf-8", "replace")
        )
        if principal is None:
            return AuthResult(success=False, handled=False, message=reply)
        return AuthResult(success=True, auth_data=principal)

    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            blob = await _decode(server, args[1])
            if blob is None:
                return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._finish(server, parts[1], parts[2])

    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth(SMTP.AuthLoginUsernameChallenge)
            if login is MISSING:
                return AuthResult(success=False, handled=True)
        else:
            login = await _decode(server, args[1])
            if login is None:
                return AuthResult(success=False, handled=True)
        password = await server.challenge_auth(SMTP.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._finish(server, login, password)
