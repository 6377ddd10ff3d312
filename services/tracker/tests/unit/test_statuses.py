from datetime import UTC, datetime, timedelta

from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, MessageRendered
from mailstream.tracker.statuses import merged, on_delivery, on_rendered

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def delivery(outcome, result="SENT"):
    return DeliveryAttempted(
        event_id="e-1",
        message_id="m-1",
        status_id="s-1",
        account_id=1,
        recipient="jane@example.com",
        outcome=outcome,
        send_result=result,
        occurred_at=T0 + timedelta(seconds=2),
        started_at=T0,
    )


def test_rendered_means_processing_since_render_time():
    msg = MessageRendered(
        message_id="m-1", status_id="s-1", account_id=1, recipients=("c@d.example",), requested_at=T0, rendered_at=T0
    )
    change = on_rendered(msg)
    assert (change.status, change.started_at, change.send_result) == ("PROCESSING", T0, None)


def test_delivered_completes_with_sent_and_the_event_id():
    change = on_delivery(delivery(DeliveryOutcome.DELIVERED))
    assert (change.status, change.send_result, change.event_id) == ("COMPLETE", "SENT", "e-1")
    assert change.completed_at == T0 + timedelta(seconds=2)


def test_a_bounce_completes_without_a_sent_event():
    change = on_delivery(delivery(DeliveryOutcome.BOUNCED, "UNDELIVERABLE"))
    assert (change.status, change.send_result, change.event_id) == ("COMPLETE", "UNDELIVERABLE", None)


def test_a_deferral_changes_nothing():
    assert on_delivery(delivery(DeliveryOutcome.DEFERRED, "QUEUED")) is None


def test_merged_changes_leave_one_per_status_the_first_complete_started_when_processing_began():
    processing = on_rendered(
        MessageRendered(
            message_id="m-1",
            status_id="S-1",
            account_id=1,
            recipients=("c@d.example",),
            requested_at=T0,
            rendered_at=T0 - timedelta(seconds=1),
        )
    )
    first, second = on_delivery(delivery(DeliveryOutcome.DELIVERED)), on_delivery(delivery(DeliveryOutcome.BOUNCED))
    (only,) = merged([processing, first, second, processing])
    assert (only.status, only.send_result, only.started_at) == ("COMPLETE", "SENT", T0 - timedelta(seconds=1))
    assert merged([processing]) == [processing]
