"""The dispatcher's delivery loop: for each endpoint with events due, one POST at a time of up to
`batch_size` of them (oldest first), signed; endpoints are served side by side (up to
`concurrency`), so one that fails or is slow holds back only its own events.

An endpoint's 2xx marks the batch DELIVERED. Any other answer, a timeout, a refused connection or
a refused target counts a failed attempt for each event of the batch, which is tried again after
the schedule's next delay (retry.py), or PARKED with the reason when the schedule is used up: then
one PARKED entry in the delivery log and one WARNING line say so, not one per failed attempt.

Events are leased while their POST is in flight: a dispatcher that dies after the endpoint
answered 2xx but before the answer was recorded leaves them to be sent again once the lease
passes (the at-least-once edge, docs/webhooks.md: receivers de-duplicate by event_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

import asyncpg
from prometheus_client import Counter, Histogram

from mailstream.core.db import DATABASE_DOWN
from mailstream.core.retry import retrying
from mailstream.gateway.adapters import webhooks_store as store
from mailstream.gateway.webhooks.client import Attempt, WebhookClient
from mailstream.gateway.webhooks.retry import RetrySchedule
from mailstream.gateway.webhooks.signing import HEADER, signature_header

log = logging.getLogger("mailstream.gateway.webhooks")
POSTS = Counter("mailstream_webhook_posts_total", "Webhook POSTs by outcome", ["outcome"])
EVENTS = Counter("mailstream_webhook_events_total", "Webhook events by final outcome", ["outcome"])
POST_SECONDS = Histogram(
    "mailstream_webhook_post_seconds", "Time of a webhook POST", buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
)
LEASE_MARGIN_S = 30.0


@dataclass(frozen=True)
class DeliveryConfig:
    schedule: RetrySchedule
    batch_size: int
    max_body_bytes: int
    timeout_s: float
    concurrency: int
    poll_interval_s: float


def request_headers(endpoint_id: str, secrets: list[str], body: bytes, count: int, origins: set[str]) -> dict:
    headers = {
        HEADER: signature_header(secrets, int(time.time()), body),
        "Mailstream-Webhook-Id": endpoint_id,
        "Mailstream-Event-Count": str(count),
    }
    replays = origins - {""}
    if len(replays) == 1 and "" not in origins:
        headers["Mailstream-Replay-Id"] = replays.pop()
    return headers


def cut(rows: list[dict], max_body_bytes: int) -> tuple[list[dict], list[dict]]:
    """The rows whose payloads fit one body (at least one), and the rest."""
    size, taken = 2, 0
    for row in rows:
        size += len(row["payload"].encode()) + 1
        if taken and size > max_body_bytes:
            break
        taken += 1
    return rows[:taken], rows[taken:]


def body_of(rows: list[dict]) -> bytes:
    return ("[" + ",".join(r["payload"] for r in rows) + "]").encode()


class Deliveries:
    def __init__(self, pool: asyncpg.Pool, client: WebhookClient, config: DeliveryConfig) -> None:
        self.pool, self.client, self.config = pool, client, config
        self.wake = asyncio.Event()
        self.inflight: dict[str, asyncio.Task] = {}

    async def run(self, stop: asyncio.Event) -> None:
        c = self.config
        while not stop.is_set():
            try:
                due = await store.due_endpoints(self.pool, c.concurrency * 4)
            except (DATABASE_DOWN, asyncpg.UndefinedTableError) as exc:
                log.warning("cannot read the webhook queue: %r", exc)
                due = []
            except Exception:  # the loop must outlive any one failure
                log.exception("reading the webhook queue failed")
                due = []
            for endpoint_id in due:
                if endpoint_id in self.inflight or len(self.inflight) >= c.concurrency:
                    continue
                task = asyncio.create_task(self._endpoint(endpoint_id), name=f"webhook-{endpoint_id[:8]}")
                self.inflight[endpoint_id] = task
                task.add_done_callback(lambda _t, e=endpoint_id: self._done(e))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken(stop), c.poll_interval_s)
            self.wake.clear()
        await asyncio.gather(*self.inflight.values(), return_exceptions=True)

    async def _woken(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def _done(self, endpoint_id: str) -> None:
        task = self.inflight.pop(endpoint_id, None)
        if task is not None and not task.cancelled() and task.exception() is not None:
            log.error("webhook %s: delivery failed: %r", endpoint_id, task.exception())
        self.wake.set()

    async def _endpoint(self, endpoint_id: str) -> None:
        """Batches of the endpoint's due events while they go through (a failure ends the turn)."""
        while await self.deliver_batch(endpoint_id):
            pass

    async def deliver_batch(self, endpoint_id: str) -> bool:
        """One POST of the endpoint's due events; True if it was taken and more may be due."""
        c = self.config
        target = await store.signing_target(self.pool, endpoint_id)
        if target is None or not target["enabled"]:
            return False
        rows = await store.claim(self.pool, endpoint_id, limit=c.batch_size, lease_s=c.timeout_s + LEASE_MARGIN_S)
        if not rows:
            return False
        rows, rest = cut(rows, c.max_body_bytes)
        await store.release(self.pool, [r["id"] for r in rest])
        body = body_of(rows)
        headers = request_headers(endpoint_id, target["secrets"], body, len(rows), {r["origin"] for r in rows})
        with POST_SECONDS.time():
            attempt = await self.client.post(target["url"], body, headers)
        await retrying(lambda: self.record(endpoint_id, rows, attempt), what=f"webhook {endpoint_id}: recording a POST")
        return attempt.ok and len(rows) == c.batch_size

    async def record(self, endpoint_id: str, rows: list[dict], attempt: Attempt) -> None:
        ids = [r["id"] for r in rows]
        event_ids = [r["event_id"] for r in rows]
        attempt_no = max(r["attempts"] for r in rows) + 1
        origin = rows[0]["origin"] if len({r["origin"] for r in rows}) == 1 else ""
        logged = {
            "attempt": attempt_no,
            "status_code": attempt.status,
            "error": attempt.error,
            "duration_ms": attempt.duration_ms,
            "excerpt": attempt.excerpt,
            "origin": origin,
        }
        async with self.pool.acquire() as conn, conn.transaction():
            if attempt.ok:
                await store.mark_delivered(conn, ids)
                await store.log_delivery(conn, endpoint_id, kind="EVENTS", outcome="DELIVERED", event_ids=event_ids,
                                         **logged)  # fmt: skip
                POSTS.labels("delivered").inc()
                EVENTS.labels("delivered").inc(len(rows))
                return
            retry, parked = [], []
            for row in rows:
                delay = self.config.schedule.delay_after(row["attempts"] + 1)
                if delay is None:
                    parked.append(row)
                else:
                    retry.append((row["id"], delay))
            error = attempt.error or "failed"
            await store.mark_failed(conn, retry, [r["id"] for r in parked], error)
            await store.log_delivery(conn, endpoint_id, kind="EVENTS", outcome="FAILED", event_ids=event_ids, **logged)
            POSTS.labels("failed").inc()
            if parked:
                reason = f"parked after {self.config.schedule.attempts} attempts: {error}"
                await store.log_delivery(
                    conn, endpoint_id, kind="PARKED", outcome="PARKED", event_ids=[r["event_id"] for r in parked],
                    attempt=attempt_no, status_code=attempt.status, error=reason, origin=origin,
                )  # fmt: skip
                EVENTS.labels("parked").inc(len(parked))
                log.warning(
                    "webhook events parked",
                    extra={"fields": {"endpoint": endpoint_id, "events": len(parked), "reason": reason}},
                )
