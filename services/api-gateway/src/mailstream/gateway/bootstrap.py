"""Composition root: the gateway's dependencies and background tasks, started in `start()` and
stopped in `stop()`; nothing at import time and no module globals.

The HTTP server starts even when PostgreSQL or Kafka is unreachable: requests then answer 503
and /readyz says which is down, while the connections are retried in the background.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import asyncpg

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.core.retry import retrying
from mailstream.core.schema_registry import use_schema_registry
from mailstream.gateway.adapters.accepting import PgAcceptStore
from mailstream.gateway.adapters.invalidation import listen
from mailstream.gateway.caches import CHANNEL, Caches
from mailstream.gateway.deps import Dependencies
from mailstream.gateway.domain_checks import run_domain_checks
from mailstream.gateway.domain_handlers import DomainService
from mailstream.gateway.handlers import Acceptor
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.limits import RateLimiter, RateSpec
from mailstream.gateway.scheduler import run_scheduler
from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.triggers.allowed import Allowed
from mailstream.gateway.webhooks.options import WebhookOptions

log = logging.getLogger("mailstream.gateway")


async def migrate_when_reachable(pool: asyncpg.Pool) -> None:
    async def migrate() -> None:
        async with pool.acquire() as conn:
            await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))

    await retrying(migrate, what="gateway migrations")


@dataclass
class Gateway:
    settings: GatewaySettings
    deps: Dependencies
    stop: asyncio.Event
    background: list[asyncio.Task] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: GatewaySettings, stop: asyncio.Event) -> Gateway:
        # min_size=0: starting needs no connection, so the gateway serves 503s while PostgreSQL is down.
        limiter = RateLimiter(default=RateSpec.parse(settings.api_rate_limit))  # a malformed limit stops start-up
        pool = await create_pool(settings.database_url, min_size=0, max_size=settings.db_pool_size)
        await use_schema_registry(settings.schema_registry_url)
        kafka = KafkaLink(bootstrap=settings.kafka_bootstrap)
        caches = Caches(api_key_ttl_s=settings.api_key_cache_s)
        acceptor = Acceptor(PgAcceptStore(pool), kafka.send_all, caches, max_batch=settings.accept_max_batch)
        deps = Dependencies(
            pool=pool,
            kafka=kafka,
            caches=caches,
            require_sending_domain=settings.require_sending_domain,
            acceptor=acceptor,
            domains=DomainService(pool, settings.domain_config()),
            limiter=limiter,
            triggers_allowed=Allowed.of(settings),  # a malformed registry prefix stops start-up
            webhooks=WebhookOptions.of(settings),
        )
        gateway = cls(settings, deps, stop)
        gateway.background.append(asyncio.create_task(kafka.keep_connected(stop), name="kafka"))
        gateway.background.append(
            asyncio.create_task(
                listen(settings.database_url, CHANNEL, caches.forget, caches.set_listening, stop), name="invalidation"
            )
        )
        migrating = asyncio.create_task(migrate_when_reachable(pool), name="migrations")
        await asyncio.wait([migrating], timeout=5)  # serve (503s) meanwhile if the database is down
        gateway.background.append(migrating)
        if settings.scheduler_enabled:
            gateway.background.append(
                asyncio.create_task(
                    run_scheduler(pool, kafka.send_many, stop, interval_s=settings.scheduler_interval_s),
                    name="scheduler",
                )
            )
        if settings.domain_checks_enabled:
            gateway.background.append(asyncio.create_task(run_domain_checks(deps.domains, stop), name="domain-checks"))
        return gateway

    async def stop_all(self) -> None:
        await self.deps.acceptor.drain()
        for task in self.background:
            if task.get_name() == "migrations" and not task.done():
                task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await self.deps.kafka.close()
        await self.deps.webhooks.close()  # the test events' HTTP client
        await self.deps.pool.close()
