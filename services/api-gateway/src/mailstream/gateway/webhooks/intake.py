"""The dispatcher's intake: a batch of delivery, engagement and unsubscribe records -> rows of
webhook_queue, one per (matching endpoint, event), in one statement. The batch's offsets are
committed only after that (BatchLoop), so a crash reads the batch again; the queue's key
(endpoint, event id, origin) makes the second pass queue nothing twice.

An endpoint gets the events recorded on the topics from its creation on (the record's Kafka
timestamp); older ones by a replay.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

import asyncpg
from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter

from mailstream.core.consumer import Batches, next_offsets
from mailstream.gateway.adapters import webhooks_store as store
from mailstream.gateway.webhooks.events import WebhookEvent, event_of
from mailstream.schemas import DecodeError, decode

log = logging.getLogger("mailstream.gateway.webhooks")
QUEUED = Counter("mailstream_webhook_events_queued_total", "Webhook events queued for an endpoint", ["origin"])
UNREADABLE = Counter("mailstream_webhook_unreadable_records_total", "Records the dispatcher could not decode (skipped)")


def events_of(records: Iterable[ConsumerRecord]) -> list[tuple[WebhookEvent, int]]:
    """(event, Kafka timestamp in ms) of the records that are webhook events."""
    found = []
    for record in records:
        try:
            event = event_of(decode(record.value))
        except DecodeError as exc:
            UNREADABLE.inc()
            log.warning(
                "record skipped: not decodable",
                extra={"fields": {"topic": record.topic, "partition": record.partition, "offset": record.offset,
                                  "error": str(exc)}},
            )  # fmt: skip
            continue
        if event is not None:
            found.append((event, record.timestamp))
    return found


def matches(events: list[tuple[WebhookEvent, int]], endpoints: list[dict], origin: str = "") -> list[store.Queued]:
    """(endpoint id, event id, origin, occurred_at, payload) of each endpoint that wants each event."""
    by_account: dict[int, list[dict]] = defaultdict(list)
    for endpoint in endpoints:
        by_account[endpoint["account_id"]].append(endpoint)
    items = []
    for event, timestamp_ms in events:
        for endpoint in by_account.get(event.account_id, ()):
            if event.type not in endpoint["event_types"]:
                continue
            since = endpoint.get("created_at")
            if not origin and since is not None and timestamp_ms < since.timestamp() * 1000:
                continue
            items.append((endpoint["id"], event.event_id, origin, event.occurred_at, event.payload))
    return items


async def handle_batch(batches: Batches, *, pool: asyncpg.Pool, queued: Callable[[], None]) -> dict:
    events = events_of(r for records in batches.values() for r in records)
    if events:
        endpoints = await store.endpoints_of(pool, sorted({e.account_id for e, _ in events}))
        items = matches(events, endpoints)
        if items:
            count = await store.enqueue(pool, items)
            QUEUED.labels("live").inc(count)
            if count:
                queued()
    return next_offsets(batches)
