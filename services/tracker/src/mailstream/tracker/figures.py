"""What the tracker has just written, told to operators: the domain figures on /metrics and one
log line per event with its message_id (and status_id), for following a send with grep.

    mailstream_tracker_events_total{event="bounced", detail="hard"}       bounce class
    mailstream_tracker_events_total{event="dropped", detail="BLOCKED_..."} sendResult
    mailstream_tracker_events_total{event="unsubscribed", detail="LINK"}  reason

Counted once per record: the tracker's offsets move in the same transaction as its writes."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter

from mailstream.core.logs import log_send
from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, EngagementRecorded, UnsubscribeRecorded

EVENTS = Counter(
    "mailstream_tracker_events_total",
    "Delivery, engagement and unsubscribe events recorded (detail: bounce class, sendResult or reason)",
    ["event", "detail"],
)


def label(evt) -> tuple[str, str] | None:
    """(event, detail) of a recorded event; None for records that are not events (rendered meta)."""
    if isinstance(evt, DeliveryAttempted):
        detail = {
            DeliveryOutcome.BOUNCED: evt.bounce_class or "",
            DeliveryOutcome.DROPPED: evt.send_result,
        }.get(evt.outcome, "")
        return evt.outcome.value.lower(), detail
    if isinstance(evt, EngagementRecorded):
        return evt.kind.value.lower(), "machine" if evt.machine else "human"
    if isinstance(evt, UnsubscribeRecorded):
        return "unsubscribed", evt.reason.value
    return None


def recorded(events: Iterable) -> None:
    for evt in events:
        named = label(evt)
        if named is None:
            continue
        EVENTS.labels(*named).inc()
        log_send(
            f"recorded {named[0]}",
            message_id=evt.message_id,
            status_id=getattr(evt, "status_id", None),
            detail=named[1] or None,
            late_report=getattr(evt, "late_report", None) or None,
        )
