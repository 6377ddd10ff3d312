"""A DSN mailed to a message's return path -> the same delivery event a synchronous bounce makes.

    RCPT TO b-<token>@bounces.<domain>   verified (schemas.return_paths): the message, or 550
    DATA                                 parsed (dsn.py); each failed 5.x.x recipient ->
    DeliveryAttempted(BOUNCED, late_report=True, class from the sender's bounce table)

The event goes to email.delivery like the sender's, so the tracker's own batch loop suppresses a
hard-bounced address and ends the send bounced with the class (statuses.py). What is not a bounce
(an auto-reply, a delayed or delivered action, a report that does not parse, a message we do not
know) is dropped with the reason logged and counted, never as a bounce.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter as Metric

from mailstream.schemas import DeliveryAttempted, DeliveryOutcome
from mailstream.schemas.bounces import BounceTable
from mailstream.tracker.dsn import NotADsn, RecipientStatus, parse_dsn
from mailstream.tracker.engagement import TrackedMessage

log = logging.getLogger(__name__)
TAKEN = Metric("mailstream_tracker_late_bounces_total", "Mail to return paths, by what became of it", ["outcome"])


class Messages(Protocol):
    async def find(self, message_id: str) -> TrackedMessage | None: ...
    async def status_id(self, message_id: str) -> str | None: ...


@dataclass
class Taken:
    events: list[DeliveryAttempted] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)  # reason -> count


@dataclass
class LateBounces:
    table: BounceTable
    messages: Messages
    publish: Callable[[DeliveryAttempted], Awaitable[None]]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def take(self, message_id: str, raw: bytes) -> Taken:
        """Publishes a late bounce per failed recipient of the DSN (the caller verified the return
        path that names `message_id`); returns what was published and what was dropped, and why."""
        taken = Taken()
        try:
            statuses = parse_dsn(raw)
        except NotADsn as exc:
            return self._dropped(taken, message_id, str(exc))
        bounces = [s for s in statuses if s.is_bounce]
        for s in statuses:
            if not s.is_bounce:
                self._dropped(taken, message_id, f"not a bounce: Action {s.action}, Status {s.status}")
        if not bounces:
            return taken
        msg = await self.messages.find(message_id)
        status_id = await self.messages.status_id(message_id) if msg else None
        if msg is None or status_id is None:
            return self._dropped(taken, message_id, "unknown message")
        for s in bounces:
            if (recipient := recipient_of(msg, s)) is None:
                self._dropped(taken, message_id, f"recipient {s.recipient} is not one of the message's")
            else:
                taken.events.append(self.event(msg, status_id, s, recipient))
        for evt in taken.events:
            await self.publish(evt)
            TAKEN.labels("bounce").inc()
            log.info(
                "late bounce of message %s to %s: %s (%s)", message_id, evt.recipient, evt.bounce_class, evt.smtp_reply
            )
        return taken

    def event(self, msg: TrackedMessage, status_id: str, s: RecipientStatus, recipient: str) -> DeliveryAttempted:
        bounce = self.table.classify(s.smtp_code, s.classified_text)
        return DeliveryAttempted(
            event_id=str(uuid.uuid4()),
            message_id=msg.message_id,
            status_id=status_id,
            account_id=msg.account_id,
            recipient=recipient,
            outcome=DeliveryOutcome.BOUNCED,
            send_result=bounce.send_result,
            occurred_at=self.clock(),
            email_id=msg.email_id,
            smtp_token_id=msg.smtp_token_id,
            bounce_class=bounce.label,
            smtp_code=s.smtp_code,
            smtp_reply=s.classified_text[:1000],
            remote_host=s.remote_mta,
            late_report=True,
            custom_args=msg.custom_args,
            categories=msg.categories,
        )

    def _dropped(self, taken: Taken, message_id: str, reason: str) -> Taken:
        taken.dropped[reason] += 1
        TAKEN.labels("dropped").inc()
        log.info("mail to the return path of message %s dropped: %s", message_id, reason)
        return taken


def recipient_of(msg: TrackedMessage, s: RecipientStatus) -> str | None:
    """The message's recipient a DSN block is about: the Original-Recipient or Final-Recipient if
    it is one of the message's (a forwarded address fails under another Final-Recipient), else the
    only recipient of a one-recipient message; None when it cannot be told (no one is suppressed)."""
    ours = {r.lower(): r.lower() for r in msg.recipients}
    for candidate in (s.original_recipient, s.recipient):
        if candidate and candidate in ours:
            return candidate
    return msg.recipients[0].lower() if len(ours) == 1 else None
