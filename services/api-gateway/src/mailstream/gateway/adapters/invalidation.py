"""Cache invalidation across gateway processes: NOTIFY on change, LISTEN in every process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from mailstream.core.retry import backoff

log = logging.getLogger("mailstream.gateway.invalidation")


async def announce(pool: asyncpg.Pool, channel: str, message: str) -> None:
    await pool.execute("SELECT pg_notify($1, $2)", channel, message)


async def listen(
    database_url: str,
    channel: str,
    on_message: Callable[[str], None],
    on_listening: Callable[[bool], None],
    stop: asyncio.Event,
) -> None:
    """Keeps one connection LISTENing until `stop`, telling `on_listening` when it starts and stops
    (the caches must not keep anything while nobody listens); reconnects with backoff."""
    attempt = 0
    while not stop.is_set():
        conn = None
        try:
            conn = await asyncpg.connect(database_url, timeout=5)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener(channel, lambda _c, _pid, _ch, payload: on_message(payload))
            on_listening(True)
            attempt = 0
            waiters = [asyncio.ensure_future(lost.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            attempt += 1
            log.warning("cache invalidation listener down, retrying", extra={"fields": {"error": repr(exc)}})
        finally:
            on_listening(False)
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        if not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff(max(attempt, 1)))
