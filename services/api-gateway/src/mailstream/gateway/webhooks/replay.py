"""Replays: the events recorded on the topics between a replay's `since` and `until` (Kafka
timestamps) queued again for its endpoint, with their own event ids and the replay's id as their
origin, so they are sent again even though they were delivered before (and only once per replay).

A replay reads with a consumer of no group (its positions are its own, the live group's are not
moved), from offsets_for_times(since) to the partitions' ends as they were when it began. A
dispatcher that dies mid-replay leaves it RUNNING; once its lease passes, any dispatcher starts it
again from `since` (what it had queued is not queued twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from mailstream.core.db import DATABASE_DOWN
from mailstream.gateway.adapters import webhooks_store as store
from mailstream.gateway.webhooks.intake import QUEUED, events_of, matches
from mailstream.schemas.topics import DELIVERY, ENGAGEMENT, UNSUBSCRIBE, TopicSpec

log = logging.getLogger("mailstream.gateway.webhooks")
SOURCES: tuple[TopicSpec, ...] = (DELIVERY, ENGAGEMENT, UNSUBSCRIBE)
LEASE_S = 60.0
POLL_S = 1.0


class Replays:
    def __init__(self, pool: asyncpg.Pool, *, bootstrap: str, queued) -> None:
        self.pool, self.bootstrap, self.queued = pool, bootstrap, queued

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            replay = None
            try:
                replay = await store.claim_replay(self.pool, LEASE_S)
                if replay is not None:
                    await self.replay(replay, stop)
            except (DATABASE_DOWN, asyncpg.UndefinedTableError) as exc:
                log.warning("replays: %r", exc)
            except Exception:
                log.exception("replay %s failed; it starts again once its lease passes", replay and replay["id"])
            if replay is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_S)

    async def replay(self, replay: dict, stop: asyncio.Event) -> None:
        endpoint = await store.event_types_of(self.pool, replay["endpoint_id"])
        if endpoint is None:
            return
        since_ms = int(replay["since"].timestamp() * 1000)
        until_ms = int(replay["until"].timestamp() * 1000)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
            client_id=f"mailstream-webhook-replay-{replay['id'][:8]}",
        )  # fmt: skip
        queued = 0
        await consumer.start()
        try:
            partitions = [TopicPartition(t.name, p) for t in SOURCES for p in range(t.partitions)]
            consumer.assign(partitions)
            starts = await consumer.offsets_for_times({tp: since_ms for tp in partitions})
            ends = await consumer.end_offsets(partitions)
            active = set()
            for tp in partitions:
                start = starts.get(tp)
                if start is not None and start.offset < ends[tp]:
                    consumer.seek(tp, start.offset)
                    active.add(tp)
            while active and not stop.is_set():
                batches = await consumer.getmany(*active, timeout_ms=500, max_records=1000)
                records = []
                for tp, got in batches.items():
                    for record in got:
                        if record.offset >= ends[tp] or record.timestamp > until_ms:
                            active.discard(tp)
                            break
                        records.append(record)
                    if tp in active and await consumer.position(tp) >= ends[tp]:
                        active.discard(tp)
                items = matches(events_of(records), [endpoint], origin=replay["id"])
                if items:
                    count = await store.enqueue(self.pool, items)
                    queued += len(items)
                    QUEUED.labels("replay").inc(count)
                    self.queued()
                await store.extend_replay(self.pool, replay["id"], LEASE_S, queued)
            if stop.is_set():
                return  # left RUNNING: done again once its lease passes
            await store.finish_replay(self.pool, replay["id"], queued)
            log.info("replay done", extra={"fields": {"replay": replay["id"], "events": queued}})
        finally:
            await consumer.stop()
