"""The tracker's intake against the real PostgreSQL: a batch of records from its four topics
becomes statuses, tracked messages, suppressions and statistics in one transaction with its
offsets; a batch read again is refused whole; a refused record is dead-lettered alone."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EngagementKind,
    EngagementRecorded,
    MessageRendered,
    UnsubscribeReason,
    UnsubscribeRecorded,
    encode,
)
from mailstream.schemas.topics import DELIVERY, ENGAGEMENT, RENDERED_META, UNSUBSCRIBE
from mailstream.tracker.intake import TrackerIntake
from mailstream.tracker.settings import TrackerSettings

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture
async def pool():
    pool = await create_pool(TrackerSettings.from_env().database_url, max_size=2)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "tracker", migrations_of("mailstream.tracker"))
    yield pool
    await pool.close()


class Harness:
    """A private topic name per test (the offsets table is keyed by topic): records are built with
    the real topic's record type but a unique partition number far above the real ones."""

    def __init__(self, pool) -> None:
        self.account = 900_000_000 + random.randrange(10_000_000)
        self.partition = random.randrange(1_000, 2**30)
        self.offsets: dict[str, int] = {}
        self.dead: list = []
        self.sought: dict[TopicPartition, int] = {}
        self.intake = TrackerIntake(pool=pool, publish_dead_letters=self._dead, seek=self._seek)

    async def _dead(self, records) -> None:
        self.dead += records

    def _seek(self, tp, offset) -> None:
        self.sought[tp] = offset

    def record(self, topic: str, value: bytes, key: bytes = b"k") -> ConsumerRecord:
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return ConsumerRecord(topic, self.partition, offset, 0, 0, key, value, None, 1, len(value), ())

    def batch(self, *records: ConsumerRecord):
        out: dict[TopicPartition, list[ConsumerRecord]] = {}
        for r in records:
            out.setdefault(TopicPartition(r.topic, r.partition), []).append(r)
        return out

    def meta(self, **kw) -> tuple[MessageRendered, ConsumerRecord]:
        msg = MessageRendered(
            message_id=str(uuid.uuid4()),
            status_id=str(uuid.uuid4()),
            account_id=self.account,
            recipients=("jane@example.com",),
            requested_at=NOW,
            rendered_at=NOW,
            email_id=7,
            smtp_token_id="tok",
            **kw,
        )
        return msg, self.record(RENDERED_META.name, encode(msg))

    def delivery(self, msg: MessageRendered, outcome=DeliveryOutcome.DELIVERED, **kw) -> ConsumerRecord:
        evt = DeliveryAttempted(
            event_id=str(uuid.uuid4()),
            message_id=msg.message_id,
            status_id=msg.status_id,
            account_id=msg.account_id,
            recipient="Jane@Example.com",
            outcome=outcome,
            send_result="SENT" if outcome is DeliveryOutcome.DELIVERED else "UNDELIVERABLE",
            occurred_at=NOW,
            email_id=msg.email_id,
            smtp_token_id=msg.smtp_token_id,
            started_at=NOW,
            **kw,
        )
        return self.record(DELIVERY.name, encode(evt))

    def engagement(self, msg: MessageRendered, kind=EngagementKind.OPEN, machine=False) -> ConsumerRecord:
        evt = EngagementRecorded(
            event_id=str(uuid.uuid4()),
            kind=kind,
            message_id=msg.message_id,
            account_id=msg.account_id,
            recipient="jane@example.com",
            occurred_at=NOW,
            email_id=msg.email_id,
            smtp_token_id=msg.smtp_token_id,
            machine=machine,
        )
        return self.record(ENGAGEMENT.name, encode(evt))

    def unsubscribe(self, msg: MessageRendered) -> ConsumerRecord:
        evt = UnsubscribeRecorded(
            event_id=str(uuid.uuid4()),
            account_id=msg.account_id,
            recipient="jane@example.com",
            reason=UnsubscribeReason.LINK,
            occurred_at=NOW,
            message_id=msg.message_id,
        )
        return self.record(UNSUBSCRIBE.name, encode(evt))


async def stats_of(pool, account_id: int, dimension: str = "account", dimension_id: str | None = None):
    row = await pool.fetchrow(
        "SELECT * FROM stats WHERE account_id = $1 AND dimension = $2 AND dimension_id = $3",
        account_id,
        dimension,
        dimension_id or str(account_id),
    )
    return {k: v for k, v in dict(row).items() if isinstance(v, int) and v and k != "account_id"} if row else {}


async def test_one_batch_of_every_topic_lands_in_one_transaction_with_its_counts(pool):
    h = Harness(pool)
    m1, r1 = h.meta()
    m2, r2 = h.meta()
    batch = h.batch(
        r1,
        r2,
        h.delivery(m1),
        h.delivery(m2, DeliveryOutcome.BOUNCED, bounce_class="hard:InvalidRecipient", smtp_code=550),
        h.engagement(m1),
        h.engagement(m1),
        h.engagement(m1, machine=True),
        h.engagement(m1, EngagementKind.CLICK),
        h.unsubscribe(m1),
    )
    offsets = await h.intake(batch)
    assert offsets == {tp: records[-1].offset + 1 for tp, records in batch.items()}
    statuses = {
        str(r["status_id"]): (r["status"], r["send_result"], r["started_at"] is not None)
        for r in await pool.fetch("SELECT * FROM send_outcomes WHERE account_id = $1", h.account)
    }
    assert statuses == {m1.status_id: ("COMPLETE", "SENT", True), m2.status_id: ("COMPLETE", "UNDELIVERABLE", True)}
    expected = {
        "sent": 2,
        "delivered": 1,
        "bounced": 1,
        "opens_total": 3,
        "opens_unique_human": 1,
        "opens_machine": 1,
        "clicks_total": 1,
        "clicks_unique_human": 1,
        "unsubscribes": 1,
    }
    assert await stats_of(pool, h.account) == expected
    assert await stats_of(pool, h.account, "email", "7") == expected
    assert await stats_of(pool, h.account, "token", "tok") == expected
    reasons = await pool.fetch("SELECT address, reason FROM suppressions WHERE account_id = $1", h.account)
    assert sorted(tuple(r) for r in reasons) == [("jane@example.com", "BOUNCED"), ("jane@example.com", "UNSUBSCRIBED")]
    assert h.dead == []


async def test_a_trigger_rules_sends_are_counted_for_the_rule_by_their_later_events_too(pool):
    """The rule id comes only with email.rendered.meta: deliveries, opens and unsubscribes of later
    batches find it through the tracked message (issue 16)."""
    h = Harness(pool)
    rule = str(uuid.uuid4())
    m1, r1 = h.meta(trigger_id=rule)
    m2, r2 = h.meta(trigger_id=rule)
    other, r3 = h.meta()  # not a rule's send
    await h.intake(h.batch(r1, r2, r3, h.delivery(m1)))  # rendered and delivered in one batch
    assert await stats_of(pool, h.account, "trigger", rule) == {"sent": 2, "delivered": 1}
    query = "SELECT trigger_id FROM tracked_messages WHERE message_id = $1"
    stored = await pool.fetchval(query, uuid.UUID(m1.message_id))
    assert stored == rule
    await h.intake(
        h.batch(
            h.delivery(m2, DeliveryOutcome.BOUNCED, bounce_class="hard:InvalidRecipient", smtp_code=550),
            h.delivery(other),
            h.engagement(m1),
            h.engagement(m1, machine=True),
            h.engagement(m1, EngagementKind.CLICK),
            h.engagement(other),
            h.unsubscribe(m1),
        )
    )
    assert await stats_of(pool, h.account, "trigger", rule) == {
        "sent": 2,
        "delivered": 1,
        "bounced": 1,
        "opens_total": 2,
        "opens_unique_human": 1,
        "opens_machine": 1,
        "clicks_total": 1,
        "clicks_unique_human": 1,
        "unsubscribes": 1,
    }
    account = await stats_of(pool, h.account)
    assert (account["sent"], account["delivered"], account["opens_total"]) == (3, 2, 3)
    dimensions = await pool.fetch(
        "SELECT DISTINCT dimension FROM stats_counters WHERE account_id = $1 ORDER BY 1", h.account
    )
    assert [r[0] for r in dimensions] == ["account", "email", "token", "trigger"]


async def test_a_batch_read_again_is_refused_whole_and_counts_nothing_twice(pool):
    h = Harness(pool)
    m, r = h.meta()
    batch = h.batch(r, h.delivery(m), h.engagement(m))
    await h.intake(batch)
    before = await stats_of(pool, h.account)
    assert await h.intake(batch) == {}  # read again (a lost commit, a zombie after a rebalance)
    assert await stats_of(pool, h.account) == before
    assert h.sought == {tp: records[-1].offset + 1 for tp, records in batch.items()}


async def test_a_later_replay_of_an_event_does_not_count_it_again(pool):
    h = Harness(pool)
    m, r = h.meta()
    await h.intake(h.batch(r, h.delivery(m)))
    replay = h.delivery(m)  # the sender re-publishes a finished message's stored event
    again_meta = h.record(RENDERED_META.name, encode(m))
    await h.intake(h.batch(replay, again_meta))
    assert (await stats_of(pool, h.account))["delivered"] == 1
    assert (await stats_of(pool, h.account))["sent"] == 1
    row = await pool.fetchrow("SELECT status FROM send_outcomes WHERE status_id = $1", uuid.UUID(m.status_id))
    assert row["status"] == "COMPLETE"


async def test_undecodable_records_and_bad_ids_are_dead_lettered_and_the_rest_written(pool):
    h = Harness(pool)
    _, r = h.meta()
    garbage = h.record(DELIVERY.name, b"\x00not avro")
    bad = MessageRendered(
        message_id="not-a-uuid",
        status_id=str(uuid.uuid4()),
        account_id=h.account,
        recipients=("x@example.com",),
        requested_at=NOW,
        rendered_at=NOW,
    )
    bad_record = h.record(RENDERED_META.name, encode(bad))
    await h.intake(h.batch(garbage, r, bad_record))
    assert sorted(d.source_offset for d in h.dead) == [0, 1]
    assert all(d.service == "tracker" and d.reason for d in h.dead)
    assert (await stats_of(pool, h.account))["sent"] == 1


async def test_a_newly_assigned_partition_is_read_from_the_stored_offset(pool):
    h = Harness(pool)
    m, r = h.meta()
    r2 = h.delivery(m)
    await h.intake(h.batch(r, r2))
    tps = {TopicPartition(RENDERED_META.name, h.partition), TopicPartition(DELIVERY.name, h.partition)}
    await h.intake.on_assigned(tps | {TopicPartition(ENGAGEMENT.name, h.partition)})
    assert h.sought == {
        TopicPartition(RENDERED_META.name, h.partition): 1,
        TopicPartition(DELIVERY.name, h.partition): 1,
    }
