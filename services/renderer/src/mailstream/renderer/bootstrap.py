"""Composition root: the dependencies the agents use, built once when the worker starts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg

from mailstream.core.db import create_pool
from mailstream.renderer.adapters.emails import EmailVersions
from mailstream.renderer.adapters.recipients import AccountPoolAssignments, Recipients
from mailstream.renderer.handlers import Ports
from mailstream.renderer.pools import load_pools
from mailstream.renderer.settings import RendererSettings
from mailstream.renderer.tracking import Tracker
from mailstream.schemas.links import LinkSigner


@dataclass
class Dependencies:
    settings: RendererSettings
    pool: asyncpg.Pool
    ports: Ports


DB_POOL_SIZE = 16  # one per concurrent agent actor
_deps: Dependencies | None = None
_ready = asyncio.Event()


def build_ports(settings: RendererSettings, pool: asyncpg.Pool) -> Ports:
    return Ports(
        emails=EmailVersions(pool),
        recipients=Recipients(pool),
        account_pools=AccountPoolAssignments(pool),
        pools=load_pools(settings.policy_dir),
        tracker=Tracker(LinkSigner.from_setting(settings.link_signing_keys), settings.tracking_base_url),
    )


async def start(settings: RendererSettings) -> Dependencies:
    global _deps
    pool = await create_pool(settings.database_url, max_size=DB_POOL_SIZE)
    _deps = Dependencies(settings=settings, pool=pool, ports=build_ports(settings, pool))
    _ready.set()
    return _deps


async def deps() -> Dependencies:
    """The dependencies; agents may start before the start-up task has built them."""
    await _ready.wait()
    assert _deps is not None
    return _deps
