"""The email events a batch's records make (the email events API's rows), and suppression
changes planned in order (no database here)."""

import uuid
from datetime import UTC, datetime

from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EngagementKind,
    EngagementRecorded,
    MessageRendered,
    SuppressionAction,
    SuppressionChanged,
    UnsubscribeReason,
    UnsubscribeRecorded,
)
from mailstream.tracker import events, handlers

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
MESSAGE, STATUS = str(uuid.UUID(int=1)), str(uuid.UUID(int=2))


def delivery(outcome: DeliveryOutcome, **extra) -> DeliveryAttempted:
    return DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=MESSAGE,
        status_id=STATUS,
        account_id=1,
        recipient="Jane@Example.com",
        outcome=outcome,
        send_result=extra.pop("send_result", "SENT"),
        occurred_at=T0,
        email_id=7,
        **extra,
    )


def change(action=SuppressionAction.REMOVE, reason="BOUNCED") -> SuppressionChanged:
    return SuppressionChanged(
        event_id=str(uuid.uuid4()),
        account_id=1,
        address="jane@example.com",
        action=action,
        occurred_at=T0,
        reason=reason,
        note="mailbox fixed",
        requested_by="api-key:3",
    )


def test_a_delivered_message_is_sent_then_delivered_and_sent_has_the_status_event_id():
    evt = delivery(DeliveryOutcome.DELIVERED, smtp_code=250, smtp_reply="250 ok")
    sent, delivered = events.on_delivery(evt)
    assert (sent.type, delivered.type) == ("SENT", "DELIVERED")
    assert str(sent.id) == evt.event_id and delivered.id != sent.id
    assert sent.recipient == "jane@example.com" and delivered.detail["response"] == "250 ok"
    assert delivered.detail["sentBy"]["id"] == evt.event_id
    assert events.on_delivery(evt) == [sent, delivered]  # a record read twice makes the same events


def test_bounces_drops_and_deferrals_keep_their_detail():
    (bounce,) = events.on_delivery(delivery(DeliveryOutcome.BOUNCED, smtp_code=550, bounce_class="invalid-recipient"))
    assert (
        bounce.type == "BOUNCE"
        and bounce.detail["category"] == "invalid-recipient"
        and bounce.detail["status"] == "550"
    )
    (dropped,) = events.on_delivery(delivery(DeliveryOutcome.DROPPED, send_result="PREVIOUSLY_UNSUBSCRIBED_PORTAL"))
    assert dropped.type == "DROPPED" and dropped.detail["dropReason"] == "PREVIOUSLY_UNSUBSCRIBED_PORTAL"
    (deferred,) = events.on_delivery(delivery(DeliveryOutcome.DEFERRED, attempt=2, smtp_code=451))
    assert deferred.type == "DEFERRED" and deferred.detail["attempt"] == 2


def test_a_batch_plans_processed_engagement_and_statuschange_events():
    rendered = MessageRendered(
        message_id=MESSAGE,
        status_id=STATUS,
        account_id=1,
        recipients=("a@example.com", "b@example.com"),
        requested_at=T0,
        rendered_at=T0,
    )
    opened = EngagementRecorded(
        event_id=str(uuid.uuid4()),
        kind=EngagementKind.OPEN,
        message_id=MESSAGE,
        account_id=1,
        recipient="a@example.com",
        occurred_at=T0,
        machine=True,
    )
    unsubscribed = UnsubscribeRecorded(
        event_id=str(uuid.uuid4()),
        account_id=1,
        recipient="a@example.com",
        reason=UnsubscribeReason.LINK,
        occurred_at=T0,
    )
    first, second = change(), change(SuppressionAction.ADD, "UNSUBSCRIBED")
    plan = handlers.plan_batch([rendered, opened, unsubscribed, first, second])
    assert [e.type for e in plan.events] == ["PROCESSED", "PROCESSED", "OPEN", "STATUSCHANGE"]
    assert plan.events[2].detail == {"filteredEvent": True}
    assert plan.suppression_changes == [first, second]
    assert plan.suppressions[-1].reason == "UNSUBSCRIBED"  # the unsubscribe's own suppression


def test_lifting_a_bounce_is_an_unbounce_event_only_when_a_bounce_was_lifted():
    lifted = events.on_suppression_change(change(), ["BOUNCED"])
    assert lifted.type == "UNBOUNCE" and lifted.detail == {"note": "mailbox fixed", "requestedBy": "api-key:3"}
    assert events.on_suppression_change(change(), []) is None
    assert events.on_suppression_change(change(SuppressionAction.ADD), ["BOUNCED"]) is None
