"""Planning a batch and counting only what the database says changed (no database here)."""

import uuid
from datetime import UTC, datetime

from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    MessageRendered,
    UnsubscribeReason,
    UnsubscribeRecorded,
)
from mailstream.tracker import handlers
from mailstream.tracker.engagement import TrackedMessage
from mailstream.tracker.stats import StatsKey, summed

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ACCOUNT = StatsKey(1, "account", "1")


def meta(n: int = 1) -> MessageRendered:
    return MessageRendered(
        message_id=str(uuid.UUID(int=n)),
        status_id=str(uuid.UUID(int=1000 + n)),
        account_id=1,
        recipients=("jane@example.com",),
        requested_at=T0,
        rendered_at=T0,
        email_id=7,
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
