"""Send-status transitions: pure, so the rules are tested without a database.

PENDING -> PROCESSING (rendered) -> COMPLETE (final outcome). Events may arrive out of
order across topics, so a COMPLETE status never moves back. One exception: a late bounce (a DSN
mailed to the return path after the receiving server said 250, DeliveryAttempted.late_report)
turns a delivered COMPLETE (SENT) into a bounced one (`late_bounce`, adapters/outcomes.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, MessageRendered


@dataclass(frozen=True, slots=True)
class StatusChange:
    status_id: str
    message_id: str
    account_id: int
    status: str
    started_at: datetime | None
    send_result: str | None = None
    completed_at: datetime | None = None
    event_id: str | None = None
    event_created: datetime | None = None
    bounce_class: str | None = None


def on_rendered(msg: MessageRendered) -> StatusChange:
    return StatusChange(msg.status_id, msg.message_id, msg.account_id, "PROCESSING", started_at=msg.rendered_at)


def on_delivery(evt: DeliveryAttempted) -> StatusChange | None:
    if evt.outcome is DeliveryOutcome.DEFERRED:
        return None  # still trying: the status stays PROCESSING
    sent = evt.outcome is DeliveryOutcome.DELIVERED
    return StatusChange(
        evt.status_id,
        evt.message_id,
        evt.account_id,
        "COMPLETE",
        started_at=evt.started_at,
        send_result=evt.send_result,
        completed_at=evt.occurred_at,
        event_id=evt.event_id if sent else None,
        event_created=evt.occurred_at if sent else None,
        bounce_class=evt.bounce_class if evt.outcome is DeliveryOutcome.BOUNCED else None,
    )


def is_late_bounce(evt: DeliveryAttempted) -> bool:
    return evt.late_report and evt.outcome is DeliveryOutcome.BOUNCED


def merged(changes: list[StatusChange]) -> list[StatusChange]:
    """One change per status id, what applying them in order would leave: the first COMPLETE
    wins (a COMPLETE never moves back), started at the earliest start any of them names."""
    by_id: dict[str, StatusChange] = {}
    for change in changes:
        key = change.status_id.lower()
        seen = by_id.get(key)
        if seen is None:
            by_id[key] = change
        elif seen.status != "COMPLETE":
            started = seen.started_at or change.started_at
            by_id[key] = dataclasses.replace(change if change.status == "COMPLETE" else seen, started_at=started)
    return list(by_id.values())
