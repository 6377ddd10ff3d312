"""The gateway's PostgreSQL pool: core's settings, plus no per-release reset round trip.

asyncpg resets every connection it takes back (RESET ALL, UNLISTEN, advisory unlock, CLOSE
ALL: one round trip per release). The gateway keeps no session state (no SET, LISTEN, session
advisory locks or cursors; transactions always end in their `async with`), so that reset
only costs time on the hot path.
"""

from __future__ import annotations

import asyncpg


async def _no_session_state_to_reset(conn: asyncpg.Connection) -> None:
    return None


async def create_gateway_pool(database_url: str, *, max_size: int) -> asyncpg.Pool:
    # min_size=0: starting needs no connection, so the gateway serves 503s while PostgreSQL is down.
    return await asyncpg.create_pool(
        database_url,
        min_size=0,
        max_size=max_size,
        command_timeout=10,
        timeout=5,
        reset=_no_session_state_to_reset,
    )
