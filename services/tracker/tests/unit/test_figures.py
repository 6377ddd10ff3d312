"""The tracker's domain figures: each recorded event's (event, detail) label."""

import uuid
from datetime import UTC, datetime

import pytest

from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EngagementKind,
    EngagementRecorded,
    UnsubscribeReason,
    UnsubscribeRecorded,
)
from mailstream.tracker.figures import label

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 3, tzinfo=UTC)


def delivery(outcome, **more) -> DeliveryAttempted:
    ids = dict(event_id=str(uuid.uuid4()), message_id=str(uuid.uuid4()), status_id=str(uuid.uuid4()))
    return DeliveryAttempted(
        **ids,
        account_id=1,
        recipient="a@b.example",
        outcome=outcome,
        send_result=more.pop("send_result", "SENT"),
        occurred_at=NOW,
        **more,
    )


def test_bounces_by_class_drops_by_send_result_engagement_and_unsubscribes():
    assert label(delivery(DeliveryOutcome.DELIVERED)) == ("delivered", "")
    assert label(delivery(DeliveryOutcome.DEFERRED)) == ("deferred", "")
    assert label(delivery(DeliveryOutcome.BOUNCED, send_result="BOUNCED", bounce_class="hard")) == ("bounced", "hard")
    assert label(delivery(DeliveryOutcome.DROPPED, send_result="PREVIOUSLY_BOUNCED")) == (
        "dropped",
        "PREVIOUSLY_BOUNCED",
    )
    click = EngagementRecorded(
        event_id="e", kind=EngagementKind.CLICK, message_id="m", account_id=1, recipient="a@b.example", occurred_at=NOW
    )
    assert label(click) == ("click", "human")
    unsubscribe = UnsubscribeRecorded(
        event_id="e", account_id=1, recipient="a@b.example", reason=UnsubscribeReason.LINK, occurred_at=NOW
    )
    assert label(unsubscribe) == ("unsubscribed", "LINK")
    assert label(object()) is None
