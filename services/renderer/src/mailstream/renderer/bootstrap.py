"""Composition root: the dependencies the agents use, built once when the worker starts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from mailstream.core.db import create_pool
from mailstream.renderer.adapters.emails import EmailVersions
from mailstream.renderer.pools import Pool, load_pools
from mailstream.renderer.settings import RendererSettings


@dataclass
class Dependencies:
    settings: RendererSettings
    pool: asyncpg.Pool
    emails: EmailVersions
    pools: dict[str, Pool]


_deps: Dependencies | None = None
_ready = asyncio.Event()


async def start(settings: RendererSettings) -> Dependencies:
    global _deps
    pool = await create_pool(settings.database_url, max_size=10)
    _deps = Dependencies(
        settings=settings, pool=pool, emails=EmailVersions(pool), pools=load_pools(settings.policy_dir)
    )
    _ready.set()
    return _deps


async def deps() -> Dependencies:
    """The dependencies; agents may start before the start-up task has built them."""
    await _ready.wait()
    assert _deps is not None
    return _deps
