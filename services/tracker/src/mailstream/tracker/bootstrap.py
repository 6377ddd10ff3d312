"""Composition root: the dependencies the agents and the HTTP routes use, built once when the worker starts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from mailstream.core.db import create_pool
from mailstream.core.kafka import reliable_producer
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.schemas.links import LinkSigner
from mailstream.tracker.adapters.publisher import Publisher
from mailstream.tracker.adapters.recent import RecentDeliveries
from mailstream.tracker.settings import TrackerSettings


@dataclass
class Dependencies:
    settings: TrackerSettings
    pool: asyncpg.Pool
    signer: LinkSigner
    publisher: Publisher
    recent: RecentDeliveries
    background: list[asyncio.Task]


_deps: Dependencies | None = None
_ready = asyncio.Event()


async def start(settings: TrackerSettings) -> Dependencies:
    global _deps
    signer = LinkSigner.from_setting(settings.link_signing_keys)  # a malformed key stops start-up
    pool = await create_pool(settings.database_url, max_size=16)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "tracker", migrations_of("mailstream.tracker"))
    producer = reliable_producer(settings.kafka_bootstrap, client_id="mailstream-tracker-http", linger_ms=5)
    await producer.start()
    recent = RecentDeliveries()
    follower = asyncio.create_task(recent.follow(settings.kafka_bootstrap), name="recent-deliveries")
    _deps = Dependencies(settings, pool, signer, Publisher(producer=producer), recent, [follower])
    _ready.set()
    return _deps


async def deps() -> Dependencies:
    """The dependencies; agents may start before the start-up task has built them."""
    await _ready.wait()
    assert _deps is not None
    return _deps
