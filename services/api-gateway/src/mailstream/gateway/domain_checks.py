"""Re-verification of sending domains on a schedule: a verified domain whose records disappear
or turn wrong is flagged FAILING, and loses its verification after the grace period
(domains.next_status). One replica at a time runs a pass: the others find the advisory lock
taken and wait for the next round.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import Counter

from mailstream.core.db import DATABASE_DOWN
from mailstream.gateway.domain_handlers import DomainService

log = logging.getLogger("mailstream.gateway.domain_checks")
LOCK_KEY = 0x646F6D73  # "doms": held for the length of one re-verification pass
CHECKED = Counter(
    "mailstream_gateway_domain_rechecks_total", "Sending domains re-verified, by resulting state", ["state"]
)


async def recheck_pass(service: DomainService, *, account_id: int | None = None) -> int | None:
    """Re-verify the due domains (one account's, when given) if no other replica is at it; how many
    were checked, None if locked out."""
    async with service.pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
            return None
        try:
            checked = 0
            while batch := await service.recheck_due(limit=100, account_id=account_id):
                for details in batch:
                    CHECKED.labels(details.row.state).inc()
                    if details.row.state != "VERIFIED":
                        log.warning(
                            "sending domain fails its DNS checks",
                            extra={
                                "fields": {
                                    "account_id": details.row.account_id,
                                    "domain": details.row.domain,
                                    "state": details.row.state,
                                }
                            },
                        )
                checked += len(batch)
            return checked
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def run_domain_checks(service: DomainService, stop: asyncio.Event, *, every_s: float = 300.0) -> None:
    """Every every_s (or the recheck interval when shorter), re-verify what is due, until stop is set."""
    wait = min(every_s, service.config.recheck_interval_s)
    while not stop.is_set():
        try:
            checked = await recheck_pass(service)
            if checked:
                log.info("re-verified sending domains", extra={"fields": {"count": checked}})
        except DATABASE_DOWN as exc:
            log.warning("domain re-verification failed, retrying", extra={"fields": {"error": repr(exc)}})
        except Exception:  # never let the loop die: log and go on next round
            log.exception("domain re-verification crashed, retrying")
        try:
            await asyncio.wait_for(stop.wait(), wait)
        except TimeoutError:
            pass
