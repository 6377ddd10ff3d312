"""Planning a batch and counting only what the database says changed (no database here)."""

import dataclasses
import uuid
from datetime import UTC, datetime

from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EngagementKind,
    EngagementRecorded,
    MessageRendered,
    UnsubscribeReason,
    UnsubscribeRecorded,
)
from mailstream.tracker import handlers
from mailstream.tracker.engagement import TrackedMessage
from mailstream.tracker.stats import StatsKey, summed

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ACCOUNT = StatsKey(1, "account", "1")


RULE = "0b8f4c1e-7a55-4d3e-9c41-5f2a6b7c8d90"
BY_RULE = StatsKey(1, "trigger", RULE)


def meta(n: int = 1, trigger_id: str | None = None) -> MessageRendered:
    return MessageRendered(
        message_id=str(uuid.UUID(int=n)),
        status_id=str(uuid.UUID(int=1000 + n)),
        account_id=1,
        recipients=("jane@example.com",),
        requested_at=T0,
        rendered_at=T0,
        email_id=7,
        trigger_id=trigger_id,
    )


def delivery(m: MessageRendered, outcome=DeliveryOutcome.DELIVERED) -> DeliveryAttempted:
    return DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=m.message_id,
        status_id=m.status_id,
        account_id=1,
        recipient="jane@example.com",
        outcome=outcome,
        send_result="SENT",
        occurred_at=T0,
        email_id=7,
    )


def counts(plan, written) -> dict[str, int]:
    return summed(handlers.increments(plan, written)).get(ACCOUNT, {})


def test_a_message_and_its_delivery_in_one_batch_are_one_status_change_and_count_once_each():
    m = meta()
    plan = handlers.plan_batch([m, m, delivery(m), delivery(m, DeliveryOutcome.DEFERRED)])
    assert len(plan.statuses) == 1 and plan.statuses[0].status == "COMPLETE"
    assert len(plan.tracked) == 1
    everything = handlers.Written(changed_statuses={uuid.UUID(m.status_id)}, new_messages={uuid.UUID(m.message_id)})
    assert counts(plan, everything) == {"sent": 1, "delivered": 1}


def test_a_rendered_messages_custom_args_and_categories_are_remembered_with_it():
    m = dataclasses.replace(meta(), custom_args={"order": "42"}, categories=("receipt",))
    ((tracked, _),) = handlers.plan_batch([m]).tracked
    assert (tracked.custom_args, tracked.categories) == ({"order": "42"}, ("receipt",))


def test_nothing_is_counted_for_rows_the_database_did_not_change():
    m = meta()
    plan = handlers.plan_batch([m, delivery(m)])
    assert counts(plan, handlers.Written()) == {}


def test_a_deferral_changes_no_status_and_moves_no_counter():
    m = meta()
    plan = handlers.plan_batch([delivery(m, DeliveryOutcome.DEFERRED)])
    assert plan.statuses == [] and counts(plan, handlers.Written()) == {}


def test_an_unsubscribe_counts_for_its_messages_email():
    m = meta()
    unsub = UnsubscribeRecorded(
        event_id="e", account_id=1, recipient="jane@example.com", reason=UnsubscribeReason.LINK, occurred_at=T0,
        message_id=m.message_id,
    )  # fmt: skip
    plan = handlers.plan_batch([unsub])
    assert plan.unsubscribed_messages == {uuid.UUID(m.message_id)}
    found = {uuid.UUID(m.message_id): TrackedMessage(m.message_id, 1, m.recipients, 7, None)}
    totals = summed(handlers.increments(plan, handlers.Written(messages=found)))
    assert totals[StatsKey(1, "email", "7")] == {"unsubscribes": 1} == totals[ACCOUNT]
    assert [s.reason for s in plan.suppressions] == ["UNSUBSCRIBED"]


def opened(m: MessageRendered, machine: bool = False) -> EngagementRecorded:
    return EngagementRecorded(
        event_id=str(uuid.uuid4()), kind=EngagementKind.OPEN, message_id=m.message_id, account_id=1,
        recipient="jane@example.com", occurred_at=T0, email_id=7, machine=machine,
    )  # fmt: skip


def unsubscribed(m: MessageRendered) -> UnsubscribeRecorded:
    return UnsubscribeRecorded(
        event_id=str(uuid.uuid4()), account_id=1, recipient="jane@example.com", reason=UnsubscribeReason.LINK,
        occurred_at=T0, message_id=m.message_id,
    )  # fmt: skip


def tracked(m: MessageRendered) -> TrackedMessage:
    return TrackedMessage(m.message_id, 1, m.recipients, m.email_id, m.smtp_token_id, m.trigger_id)


def test_a_rendered_send_of_a_rule_and_its_delivery_in_one_batch_count_for_the_rule_without_a_lookup():
    m = meta(trigger_id=RULE)
    plan = handlers.plan_batch([m, delivery(m), opened(m)])
    written = handlers.Written(
        changed_statuses={uuid.UUID(m.status_id)},
        new_messages={uuid.UUID(m.message_id)},
        new_firsts=set(plan.first_candidates),
    )
    assert handlers.to_look_up(plan, written) == set()
    totals = summed(handlers.increments(plan, written))
    assert totals[BY_RULE] == {"sent": 1, "delivered": 1, "opens_total": 1, "opens_unique_human": 1}
    assert totals[ACCOUNT] == totals[BY_RULE]


def test_later_events_of_a_rules_send_find_the_rule_through_the_tracked_message():
    m, other = meta(1, trigger_id=RULE), meta(2)
    events = [delivery(m), delivery(other), opened(m), opened(m, machine=True), unsubscribed(m)]
    plan = handlers.plan_batch(events)
    written = handlers.Written(
        changed_statuses={uuid.UUID(m.status_id), uuid.UUID(other.status_id)}, new_firsts=set(plan.first_candidates)
    )
    # one lookup for the batch: every message whose events move a counter
    assert handlers.to_look_up(plan, written) == {uuid.UUID(m.message_id), uuid.UUID(other.message_id)}
    written.messages = {uuid.UUID(x.message_id): tracked(x) for x in (m, other)}
    totals = summed(handlers.increments(plan, written))
    assert totals[BY_RULE] == {
        "delivered": 1, "opens_total": 2, "opens_unique_human": 1, "opens_machine": 1, "unsubscribes": 1,
    }  # fmt: skip
    assert totals[ACCOUNT]["delivered"] == 2
    assert not any(k.dimension == "trigger" and k != BY_RULE for k in totals)


def test_a_delivery_that_changed_no_status_needs_no_lookup_and_a_late_bounce_moves_the_rule_too():
    m = meta(trigger_id=RULE)
    plan = handlers.plan_batch([delivery(m)])
    assert handlers.to_look_up(plan, handlers.Written()) == set()
    late = handlers.plan_batch([delivery(m, DeliveryOutcome.BOUNCED)])
    late.late_bounces = {uuid.UUID(m.status_id): delivery(m, DeliveryOutcome.BOUNCED)}
    written = handlers.Written(late_bounced={uuid.UUID(m.status_id)})
    assert handlers.to_look_up(late, written) == {uuid.UUID(m.message_id)}
    written.messages = {uuid.UUID(m.message_id): tracked(m)}
    assert summed(handlers.increments(late, written))[BY_RULE] == {"delivered": -1, "bounced": 1}


def test_a_message_no_rule_made_counts_for_no_rule():
    m = meta()
    plan = handlers.plan_batch([m, delivery(m)])
    written = handlers.Written(changed_statuses={uuid.UUID(m.status_id)}, new_messages={uuid.UUID(m.message_id)})
    assert not any(k.dimension == "trigger" for k in summed(handlers.increments(plan, written)))
