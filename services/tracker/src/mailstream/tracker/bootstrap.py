"""Composition root: the dependencies the agents use, built once when the worker starts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.tracker.settings import TrackerSettings


@dataclass
class Dependencies:
    settings: TrackerSettings
    pool: asyncpg.Pool


_deps: Dependencies | None = None
_ready = asyncio.Event()


async def start(settings: TrackerSettings) -> Dependencies:
    global _deps
    pool = await create_pool(settings.database_url, max_size=10)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "tracker", migrations_of("mailstream.tracker"))
    _deps = Dependencies(settings=settings, pool=pool)
    _ready.set()
    return _deps


async def deps() -> Dependencies:
    """The dependencies; agents may start before the start-up task has built them."""
    await _ready.wait()
    assert _deps is not None
    return _deps
