"""One fetched batch of a rule's topic -> sends through the accept path, dead letters for the rest,
then the batch's offsets (core.consumer.BatchLoop commits them).

Every mapped record becomes a SendCommand given to the gateway's Acceptor (the single-send API's
accept path: group commit, transactional/marketing rules, suppressions, sending domains, sendId
idempotency), all of the batch at once so that they share group commits. The offsets move only
after every send is recorded and on Kafka and every dead letter is on Kafka: a crash re-reads
the batch, and the sendIds make the second pass send nothing again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka.structs import ConsumerRecord
from prometheus_client import Counter, Histogram

from mailstream.core.consumer import Batches, next_offsets
from mailstream.core.retry import is_transient
from mailstream.gateway.adapters.accepting import BAD_INPUT
from mailstream.gateway.handlers import SendCommand
from mailstream.gateway.triggers.decoding import SchemaLookup, Undecodable, decode
from mailstream.gateway.triggers.mapping import Mapped, Skipped, Unmappable, map_record
from mailstream.gateway.triggers.rule import TriggerRule
from mailstream.schemas import RecordDeadLettered, dead_lettered

log = logging.getLogger("mailstream.gateway.triggers")

SERVICE = "gateway-triggers"
RECORDS = Counter("mailstream_trigger_records_total", "Records of customer topics handled", ["trigger", "outcome"])
SEND_RESULTS = Counter(
    "mailstream_trigger_sends_total", "Sends triggered, by the accept path's answer", ["trigger", "result"]
)
RECORD_TO_ACCEPT = Histogram(
    "mailstream_trigger_record_age_seconds",
    "From a record's timestamp to its send accepted",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

Send = Callable[[int, SendCommand], Awaitable[dict[str, Any]]]
PublishDeadLetters = Callable[[list[RecordDeadLettered]], Awaitable[None]]


@dataclass
class BatchResult:
    """What one batch did (for tests and logs)."""

    sent: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0
    dead: list[RecordDeadLettered] = field(default_factory=list)


def dead_letter(rule: TriggerRule, record: ConsumerRecord, reason: str) -> RecordDeadLettered:
    RECORDS.labels(rule.id, "dead_lettered").inc()
    return dead_lettered(
        service=SERVICE,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key,
        value=record.value,
        reason=f"trigger {rule.id}: {reason}",
    )


async def mapped(
    rule: TriggerRule, records: Iterable[ConsumerRecord], schemas: SchemaLookup, *, require_sending_domain: bool
) -> tuple[list[tuple[ConsumerRecord, SendCommand]], list[RecordDeadLettered], int]:
    commands, dead, skipped = [], [], 0
    for record in records:
        try:
            value = await decode(rule, record.value, schemas)  # an unreachable registry raises: transient
        except Undecodable as exc:
            dead.append(dead_letter(rule, record, str(exc)))
            continue
        outcome = map_record(rule, value, require_sending_domain=require_sending_domain)
        if isinstance(outcome, Mapped):
            commands.append((record, outcome.command))
        elif isinstance(outcome, Skipped):
            skipped += 1
        else:
            assert isinstance(outcome, Unmappable)
            dead.append(dead_letter(rule, record, outcome.reason))
    RECORDS.labels(rule.id, "skipped").inc(skipped)
    return commands, dead, skipped


async def handle_batch(
    batches: Batches,
    *,
    rule: TriggerRule,
    send: Send,
    publish_dead: PublishDeadLetters,
    schemas: SchemaLookup,
    require_sending_domain: bool = False,
    clock: Callable[[], float],
) -> dict:
    records = [r for partition in batches.values() for r in partition]
    commands, dead, _ = await mapped(rule, records, schemas, require_sending_domain=require_sending_domain)
    answers = await asyncio.gather(*(send(rule.account_id, cmd) for _, cmd in commands), return_exceptions=True)
    now = clock()
    for (record, _), answer in zip(commands, answers, strict=True):
        if isinstance(answer, BaseException):
            if isinstance(answer, BAD_INPUT):  # this record's values are refused (a NUL in a property)
                dead.append(dead_letter(rule, record, f"refused input: {type(answer).__name__}: {answer}"))
                continue
            if not is_transient(answer):
                log.error("trigger %s: a send failed: %r", rule.id, answer)
            raise answer  # the whole batch is read again (sendIds: nothing is sent twice)
        RECORDS.labels(rule.id, "sent").inc()
        SEND_RESULTS.labels(rule.id, answer.get("sendResult") or answer.get("status", "")).inc()
        if record.timestamp:
            RECORD_TO_ACCEPT.observe(max(0.0, now - record.timestamp / 1000))
    if dead:
        await publish_dead(dead)
        for d in dead:
            log.warning(
                "record dead-lettered",
                extra={
                    "fields": {
                        "topic": d.source_topic,
                        "partition": d.source_partition,
                        "offset": d.source_offset,
                        "reason": d.reason,
                    }
                },
            )
    return next_offsets(batches)
