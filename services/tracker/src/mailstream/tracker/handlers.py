"""What a batch of consumed events changes, planned without I/O, and the statistics increments
that follow from what the database says it changed. Feedback complaints -> events.

    plan = plan_batch(events)                  # pure
    written = <one transaction applies plan>   # adapters/store.py, intake.py
    increments(plan, written)                  # pure: counted only what changed

A counter moves only with the change it counts: `sent` when a tracked message is new,
delivered / bounced / dropped when a status became COMPLETE (a late bounce of a delivered message
moves it from delivered to bounced), a unique human open or click when its (message, recipient)
is new, in the same transaction as the change and the offsets.

Per automation trigger rule too (issue 16): a rendered message names its rule; the delivery,
engagement and unsubscribe events of it do not, so the rule comes from the tracked messages,
looked up once per batch (`to_look_up`), only for the events that move a counter and whose
message was not rendered in the same batch.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EngagementKind,
    EngagementRecorded,
    MessageRendered,
    SuppressionChanged,
    UnsubscribeRecorded,
)
from mailstream.tracker import events as event_log
from mailstream.tracker import statuses, suppression
from mailstream.tracker.engagement import TrackedMessage, spam_report
from mailstream.tracker.feedback import Complaint
from mailstream.tracker.stats import Delta, StatsKey, engagement_delta, keys_for, outcome_delta

log = logging.getLogger(__name__)
Increments = list[tuple[StatsKey, Delta]]
Event = MessageRendered | DeliveryAttempted | EngagementRecorded | UnsubscribeRecorded | SuppressionChanged
# (kind, message id, lower-cased recipient) of a human open or click
FirstKey = tuple[str, uuid.UUID, str]


@dataclass
class BatchPlan:
    statuses: list[statuses.StatusChange] = field(default_factory=list)  # one per status id
    finals: dict[uuid.UUID, DeliveryAttempted] = field(default_factory=dict)  # status id -> its COMPLETE event
    late_bounces: dict[uuid.UUID, DeliveryAttempted] = field(default_factory=dict)  # status id -> its first one
    tracked: list[tuple[TrackedMessage, datetime]] = field(default_factory=list)
    suppressions: list[suppression.Suppression] = field(default_factory=list)
    engagements: list[EngagementRecorded] = field(default_factory=list)
    first_candidates: list[FirstKey] = field(default_factory=list)
    unsubscribes: list[UnsubscribeRecorded] = field(default_factory=list)
    events: list[event_log.EmailEvent] = field(default_factory=list)  # the email events API's
    suppression_changes: list[SuppressionChanged] = field(default_factory=list)  # applied in order

    @property
    def unsubscribed_messages(self) -> set[uuid.UUID]:
        return {uuid.UUID(u.message_id) for u in self.unsubscribes if u.message_id}


@dataclass
class Written:
    """What the database answered while applying a plan."""

    changed_statuses: set[uuid.UUID] = field(default_factory=set)
    late_bounced: set[uuid.UUID] = field(default_factory=set)  # delivered, now bounced
    new_messages: set[uuid.UUID] = field(default_factory=set)
    new_firsts: set[FirstKey] = field(default_factory=set)
    # the tracked messages of the batch's counted events (to_look_up): their rule, an unsubscribe's email and token
    messages: dict[uuid.UUID, TrackedMessage] = field(default_factory=dict)


def first_key(evt: EngagementRecorded) -> FirstKey | None:
    if evt.kind is EngagementKind.SPAM_REPORT or evt.machine:
        return None
    return (evt.kind.value, uuid.UUID(evt.message_id), evt.recipient.lower())


def plan_batch(events: Iterable[Event]) -> BatchPlan:
    """Ids are valid UUIDs (checked when the records were decoded)."""
    plan = BatchPlan()
    changes: list[statuses.StatusChange] = []
    seen_messages: set[uuid.UUID] = set()
    seen_firsts: set[FirstKey] = set()
    for evt in events:
        if isinstance(evt, MessageRendered):
            changes.append(statuses.on_rendered(evt))
            plan.events.extend(event_log.on_rendered(evt))
            key = uuid.UUID(evt.message_id)
            if key not in seen_messages:  # a repeated record: remembered and counted once
                seen_messages.add(key)
                tracked = TrackedMessage(
                    evt.message_id,
                    evt.account_id,
                    evt.recipients,
                    evt.email_id,
                    evt.smtp_token_id,
                    evt.trigger_id,
                    evt.custom_args,
                    evt.categories,
                )
                plan.tracked.append((tracked, evt.rendered_at))
        elif isinstance(evt, DeliveryAttempted):
            plan.events.extend(event_log.on_delivery(evt))
            if (s := suppression.on_bounce(evt)) is not None:
                plan.suppressions.append(s)
            if (change := statuses.on_delivery(evt)) is not None:
                changes.append(change)
                plan.finals.setdefault(uuid.UUID(evt.status_id), evt)
            if statuses.is_late_bounce(evt):
                plan.late_bounces.setdefault(uuid.UUID(evt.status_id), evt)
        elif isinstance(evt, EngagementRecorded):
            plan.engagements.append(evt)
            plan.events.append(event_log.on_engagement(evt))
            if (key := first_key(evt)) is not None and key not in seen_firsts:
                seen_firsts.add(key)
                plan.first_candidates.append(key)
        elif isinstance(evt, SuppressionChanged):
            plan.suppression_changes.append(evt)
        else:
            plan.suppressions.append(suppression.on_unsubscribe(evt))
            plan.unsubscribes.append(evt)
            plan.events.append(event_log.on_unsubscribe(evt))
    plan.statuses = statuses.merged(changes)
    return plan


def to_look_up(plan: BatchPlan, written: Written) -> set[uuid.UUID]:
    """The messages whose tracked record the increments need: those of the unsubscribes (their email and
    token), and for the trigger rule those of the delivery outcomes that changed a status, the late
    bounces and the engagements; not those rendered in this batch (the plan has them)."""
    ids = set(plan.unsubscribed_messages)
    ids.update(uuid.UUID(evt.message_id) for sid, evt in plan.finals.items() if sid in written.changed_statuses)
    ids.update(uuid.UUID(plan.late_bounces[sid].message_id) for sid in written.late_bounced)
    ids.update(uuid.UUID(evt.message_id) for evt in plan.engagements)
    return ids - {uuid.UUID(m.message_id) for m, _ in plan.tracked} if plan.tracked else ids


# A message is counted in exactly one of delivered / bounced / dropped, its final outcome: a late
# bounce of a message counted delivered moves it from delivered to bounced.
LATE_BOUNCE_DELTA: Delta = {"delivered": -1, "bounced": 1}


def increments(plan: BatchPlan, written: Written) -> Increments:
    result: Increments = []
    rendered = {uuid.UUID(m.message_id): m for m, _ in plan.tracked}
    known = [*rendered.values(), *written.messages.values()]
    rule_of = {uuid.UUID(m.message_id): m.trigger_id for m in known if m.trigger_id}

    def trigger_of(message_id: str | None) -> str | None:
        if not rule_of or not message_id:  # a batch without a rule's send costs nothing more
            return None
        return rule_of.get(uuid.UUID(message_id))

    def add(account_id: int, email_id: int | None, token: str | None, delta: Delta, trigger: str | None) -> None:
        if delta:
            result.extend((k, delta) for k in keys_for(account_id, email_id, token, trigger))

    for tracked, _ in plan.tracked:
        if uuid.UUID(tracked.message_id) in written.new_messages:
            add(tracked.account_id, tracked.email_id, tracked.smtp_token_id, {"sent": 1}, tracked.trigger_id)
    for status_id, evt in plan.finals.items():
        if status_id in written.changed_statuses:
            add(evt.account_id, evt.email_id, evt.smtp_token_id, outcome_delta(evt.outcome), trigger_of(evt.message_id))
    for status_id in written.late_bounced:  # counted delivered before: now bounced instead
        evt = plan.late_bounces[status_id]
        add(evt.account_id, evt.email_id, evt.smtp_token_id, LATE_BOUNCE_DELTA, trigger_of(evt.message_id))
    counted_firsts: set[FirstKey] = set()
    for evt in plan.engagements:
        key = first_key(evt)
        first = key is not None and key in written.new_firsts and key not in counted_firsts
        if first:
            counted_firsts.add(key)
        add(
            evt.account_id,
            evt.email_id,
            evt.smtp_token_id,
            engagement_delta(evt.kind, machine=evt.machine, first_human=first),
            trigger_of(evt.message_id),
        )
    for evt in plan.unsubscribes:
        key = uuid.UUID(evt.message_id) if evt.message_id else None
        msg = (rendered.get(key) or written.messages.get(key)) if key else None
        add(
            evt.account_id,
            msg.email_id if msg else None,
            msg.smtp_token_id if msg else None,
            {"unsubscribes": 1},
            msg.trigger_id if msg else None,
        )
    return result


def is_final(evt: DeliveryAttempted) -> bool:
    return evt.outcome is not DeliveryOutcome.DEFERRED


# ---- feedback-loop complaints ------------------------------------------------------------------


class MessageLookup(Protocol):
    async def find(self, message_id: str) -> TrackedMessage | None: ...
    async def already_reported(self, account_id: int, address: str, message_id: str) -> bool: ...


@dataclass
class ComplaintsTaken:
    events: list[tuple[EngagementRecorded, UnsubscribeRecorded]] = field(default_factory=list)
    counts: dict[str, int] = field(
        default_factory=lambda: {"spamReports": 0, "notSpam": 0, "unknownMessage": 0, "duplicate": 0}
    )


async def take_complaints(complaints: list[Complaint], messages: MessageLookup) -> ComplaintsTaken:
    """Each spam complaint about a message of ours -> one SPAM_REPORT and one unsubscribe event
    (returned: the caller publishes them)."""
    taken = ComplaintsTaken()
    for c in complaints:
        if not c.is_spam:
            taken.counts["notSpam"] += 1
            continue
        msg = await messages.find(c.message_id) if c.message_id else None
        if msg is None:
            log.warning("%s complaint for unknown message %s", c.source, c.message_id)
            taken.counts["unknownMessage"] += 1
            continue
        recipient = msg.recipient_for(c.recipient)
        if await messages.already_reported(msg.account_id, recipient, msg.message_id):
            taken.counts["duplicate"] += 1
            continue
        taken.events.append(spam_report(msg, recipient=recipient, occurred_at=datetime.now(UTC), reporter=c.user_agent))
        taken.counts["spamReports"] += 1
    return taken
