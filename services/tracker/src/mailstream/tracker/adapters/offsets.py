"""The tracker's consumed offsets, kept in PostgreSQL with the batch they describe (see the
migration 0006_batches.sql): the batch and its offsets are written together or not at all."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from aiokafka import TopicPartition

from mailstream.core.retry import MailstreamError


@dataclass(frozen=True, slots=True)
class Position:
    """What one batch consumed of one partition: from `first` to `next_offset` - 1."""

    tp: TopicPartition
    first: int
    next_offset: int


class AlreadyWritten(MailstreamError):
    """A partition of the batch was written past the batch's first offset (by this process before
    a lost commit, or by another one after a rebalance): the whole batch is refused."""

    def __init__(self, tps: list[TopicPartition]) -> None:
        super().__init__(f"already written past this batch: {tps}")
        self.tps = tps


ADVANCE = """INSERT INTO tracker_offsets (topic, partition, next_offset, batch_first)
             SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[])
             ON CONFLICT (topic, partition) DO UPDATE
                 SET next_offset = EXCLUDED.next_offset, batch_first = EXCLUDED.batch_first, updated_at = now()
                 WHERE tracker_offsets.next_offset <= EXCLUDED.batch_first
             RETURNING topic, partition"""


async def advance(conn: asyncpg.Connection, positions: list[Position]) -> None:
    """Moves every partition's offset past the batch, inside the caller's transaction; raises
    AlreadyWritten (the caller rolls back) when a partition already stands past the batch's start."""
    if not positions:
        return
    ordered = sorted(positions, key=lambda p: (p.tp.topic, p.tp.partition))
    rows = await conn.fetch(
        ADVANCE,
        [p.tp.topic for p in ordered],
        [p.tp.partition for p in ordered],
        [p.next_offset for p in ordered],
        [p.first for p in ordered],
    )
    moved = {(r["topic"], r["partition"]) for r in rows}
    refused = [p.tp for p in ordered if (p.tp.topic, p.tp.partition) not in moved]
    if refused:
        raise AlreadyWritten(refused)


async def stored(pool: asyncpg.Pool | asyncpg.Connection, tps: set[TopicPartition]) -> dict[TopicPartition, int]:
    """The next offset to read of each partition the tracker has written a batch of."""
    if not tps:
        return {}
    rows = await pool.fetch(
        """SELECT o.topic, o.partition, o.next_offset FROM tracker_offsets o
           JOIN unnest($1::text[], $2::int[]) AS q(topic, partition)
             ON q.topic = o.topic AND q.partition = o.partition""",
        [tp.topic for tp in tps],
        [tp.partition for tp in tps],
    )
    return {TopicPartition(r["topic"], r["partition"]): r["next_offset"] for r in rows}
