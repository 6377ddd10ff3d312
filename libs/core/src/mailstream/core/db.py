"""PostgreSQL pool factory."""

from __future__ import annotations

import asyncpg

# The database is down, restarting or unreachable: the same work succeeds once it is back.
# OperatorInterventionError covers "shutting down" / "starting up" (CannotConnectNow, AdminShutdown);
# InternalClientError is a connection the server left mid-operation ("cannot switch to state").
DATABASE_DOWN = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
)


async def create_pool(database_url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=10,
        timeout=5,
        reset=_no_session_state_to_reset,
    )


async def _no_session_state_to_reset(conn: asyncpg.Connection) -> None:
    """asyncpg's default reset on every release (RESET ALL, UNLISTEN, advisory unlock, CLOSE ALL)
    is one more round trip and statement per use. No component keeps session state (no SET,
    LISTEN, session advisory locks or cursors), and asyncpg still rolls back an open transaction."""
    return None


async def database_reachable(pool: asyncpg.Pool) -> bool:
    try:
        async with pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1")
        return True
    except Exception:
        return False
