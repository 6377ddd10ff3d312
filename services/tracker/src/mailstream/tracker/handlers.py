"""What each consumed event does: status rows, tracked messages, suppressions, and the statistics
increments to forward (returned, not sent: the agents send them). Feedback complaints -> events."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping, MutableMapping
from datetime import UTC, datetime

from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EmailRendered,
    EngagementKind,
    EngagementRecorded,
    UnsubscribeRecorded,
)
from mailstream.tracker import statuses, suppression
from mailstream.tracker.adapters import messages
from mailstream.tracker.adapters import stats as stats_table
from mailstream.tracker.adapters.outcomes import apply_status, apply_statuses
from mailstream.tracker.adapters.suppressions import already_reported, suppress, suppress_all
from mailstream.tracker.engagement import TrackedMessage, spam_report
from mailstream.tracker.feedback import Complaint
from mailstream.tracker.stats import Delta, StatsKey, engagement_delta, keys_for, outcome_delta, unique_key

log = logging.getLogger(__name__)
Increments = list[tuple[StatsKey, Delta]]


def increments(keys: list[StatsKey], delta: Delta) -> Increments:
    return [(k, delta) for k in keys] if delta else []


async def on_rendered(msg: EmailRendered, deps) -> Increments:
    await apply_status(deps.pool, statuses.on_rendered(msg))
    tracked = TrackedMessage(msg.message_id, msg.account_id, msg.recipients, msg.email_id, msg.smtp_token_id)
    if await messages.remember(deps.pool, tracked, msg.rendered_at):
        return increments(keys_for(msg.account_id, msg.email_id, msg.smtp_token_id), {"sent": 1})
    return []


async def on_delivery(evt: DeliveryAttempted, deps) -> Increments:
    if (s := suppression.on_bounce(evt)) is not None:
        await suppress(deps.pool, s)
    change = statuses.on_delivery(evt)
    if change is None or not await apply_status(deps.pool, change):
        return []  # a deferral, or a final outcome already counted
    return increments(keys_for(evt.account_id, evt.email_id, evt.smtp_token_id), outcome_delta(evt.outcome))


def first_per_id(items: list, key) -> list:
    """The first item for each id (ids compared as UUIDs), in order: what applying the items one by one
    would let through, since a later one for the same id changes nothing. ValueError on a malformed id."""
    seen: set[uuid.UUID] = set()
    first = []
    for item in items:
        if (k := uuid.UUID(key(item))) not in seen:
            seen.add(k)
            first.append(item)
    return first


async def on_rendered_batch(msgs: list[EmailRendered], pool) -> Increments:
    """on_rendered for many records: one statement per table, the same rows and increments."""
    msgs = first_per_id(msgs, lambda m: m.message_id)  # a repeated record: remembered and counted once
    changes = first_per_id([statuses.on_rendered(m) for m in msgs], lambda c: c.status_id)
    tracked = [
        (TrackedMessage(m.message_id, m.account_id, m.recipients, m.email_id, m.smtp_token_id), m.rendered_at)
        for m in msgs
    ]
    async with pool.acquire() as conn:
        await apply_statuses(conn, changes)
        new = await messages.remember_all(conn, tracked)
    result: Increments = []
    for m in msgs:
        if uuid.UUID(m.message_id) in new:
            result += increments(keys_for(m.account_id, m.email_id, m.smtp_token_id), {"sent": 1})
    return result


async def on_delivery_batch(evts: list[DeliveryAttempted], pool) -> Increments:
    """on_delivery for many records: one statement per table, the same rows and increments."""
    bounces = [s for e in evts if (s := suppression.on_bounce(e)) is not None]
    finals = first_per_id([e for e in evts if e.outcome is not DeliveryOutcome.DEFERRED], lambda e: e.status_id)
    async with pool.acquire() as conn:
        await suppress_all(conn, bounces)
        changed = await apply_statuses(conn, [statuses.on_delivery(e) for e in finals])
    result: Increments = []
    for e in finals:
        if uuid.UUID(e.status_id) in changed:
            result += increments(keys_for(e.account_id, e.email_id, e.smtp_token_id), outcome_delta(e.outcome))
    return result


def on_engagement(evt: EngagementRecorded, first_human: MutableMapping[str, bool]) -> Increments:
    first = False
    if evt.kind is not EngagementKind.SPAM_REPORT and not evt.machine:
        key = unique_key(evt.kind, evt.message_id, evt.recipient)
        if key not in first_human:
            first_human[key] = first = True
    delta = engagement_delta(evt.kind, machine=evt.machine, first_human=first)
    return increments(keys_for(evt.account_id, evt.email_id, evt.smtp_token_id), delta)


async def on_unsubscribe(evt: UnsubscribeRecorded, deps) -> Increments:
    await suppress(deps.pool, suppression.on_unsubscribe(evt))
    msg = await messages.find(deps.pool, evt.message_id) if evt.message_id else None
    keys = keys_for(evt.account_id, msg.email_id if msg else None, msg.smtp_token_id if msg else None)
    return increments(keys, {"unsubscribes": 1})


async def flush_stats(counts: Mapping[str, dict], dirty: dict[str, int], owned: set[int], deps) -> int:
    """Writes the counters changed since the last flush to PostgreSQL (absolute values), for the
    partitions this worker owns; keys of partitions it lost are dropped (their new owner writes them)."""
    mine = {k: partition for k, partition in dirty.items() if partition in owned}
    dirty.clear()
    if not mine:
        return 0
    try:
        return await stats_table.write(deps.pool, [(StatsKey.decode(k), counts[k]) for k in mine])
    except Exception:
        for k, partition in mine.items():
            dirty.setdefault(k, partition)  # retried at the next tick
        log.exception("materializing %d statistics rows failed", len(mine))
        return 0


async def take_complaints(complaints: list[Complaint], deps) -> dict[str, int]:
    """Each spam complaint about a message of ours -> one SPAM_REPORT and one unsubscribe event."""
    result = {"spamReports": 0, "notSpam": 0, "unknownMessage": 0, "duplicate": 0}
    for c in complaints:
        if not c.is_spam:
            result["notSpam"] += 1
            continue
        msg = await messages.find(deps.pool, c.message_id) if c.message_id else None
        if msg is None:
            log.warning("%s complaint for unknown message %s", c.source, c.message_id)
            result["unknownMessage"] += 1
            continue
        recipient = msg.recipient_for(c.recipient)
        if await already_reported(deps.pool, msg.account_id, recipient, msg.message_id):
            result["duplicate"] += 1
            continue
        report, unsub = spam_report(msg, recipient=recipient, occurred_at=datetime.now(UTC), reporter=c.user_agent)
        await deps.publisher.engagement(report)
        await deps.publisher.unsubscribe(unsub)
        result["spamReports"] += 1
    return result
