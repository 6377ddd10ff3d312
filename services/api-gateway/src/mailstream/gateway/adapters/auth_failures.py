"""Failed SMTP AUTH attempts in PostgreSQL, counted across every gateway replica (the throttle's
limit per client address holds however many replicas the load balancer spreads clients over).

A claim counts the attempt as failed before its credentials are checked, under a transaction lock
per address, so parallel guesses through several replicas cannot all pass the limit; a success
takes it back (release)."""

from __future__ import annotations

import asyncpg

PURGE = "DELETE FROM smtp_auth_failures WHERE failed_at <= clock_timestamp() - make_interval(secs => $1)"
RECENT = """
SELECT count(*) AS n, extract(epoch FROM clock_timestamp() - min(failed_at)) AS age
FROM smtp_auth_failures WHERE client = $1
"""
RELEASE = """
DELETE FROM smtp_auth_failures
WHERE id = (SELECT id FROM smtp_auth_failures WHERE client = $1 ORDER BY failed_at DESC LIMIT 1)
"""


class PgAuthFailures:
    def __init__(self, pool: asyncpg.Pool, *, max_failures: int, window_s: float) -> None:
        self.pool, self.max_failures, self.window_s = pool, max_failures, window_s

    async def claim(self, address: str) -> float:
        """0: the attempt may go on and counts as failed until released; else the seconds until
        the address's oldest failure leaves the window."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", f"smtp-auth:{address}")
            await conn.execute(PURGE, self.window_s)
            recent = await conn.fetchrow(RECENT, address)
            if recent["n"] >= self.max_failures:
                return max(0.0, self.window_s - float(recent["age"]))
            await conn.execute("INSERT INTO smtp_auth_failures (client) VALUES ($1)", address)
            return 0.0

    async def release(self, address: str) -> None:
        await self.pool.execute(RELEASE, address)
