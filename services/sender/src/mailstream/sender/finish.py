"""Record and publish a pipeline result; after this returns, the record's offset may be committed.

The remaining duplicate window (also in docs/sender-notes.md): a message the receiver accepted
whose delivery record was not committed when the process died is sent again after the restart.
`record_delivered` runs while Deliver still holds the connection slot, so at most one such
message per connection slot exists at any moment.

- Delivered / Bounced / Dropped: the delivery record (with the encoded event) is written, then
  the event is published on email.delivery. A crash in between is healed by redelivery: the
  record exists, so the message is not sent again and its stored event is re-published.
- Deferred: the message goes to a retry tier (attempt + 1, not_before), acked, then a DEFERRED
  event (send_result QUEUED) is published. Past the maximum age it expires as a soft bounce.
- Rerouted: the message is re-published on email.rendered under the new IP's key.
- Replayed: the stored event is published again.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from mailstream.core.db import DATABASE_DOWN
from mailstream.core.retry import retrying
from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, EmailRendered, SendResult, encode
from mailstream.sender.outcomes import Bounced, Deferred, Delivered, Dropped, Outcome, Replayed, Rerouted, StepResult
from mailstream.sender.pipeline import Attempt
from mailstream.sender.policy import Policy
from mailstream.sender.retry import RetrySchedule

log = logging.getLogger("mailstream.sender")


class Publisher(Protocol):
    async def delivery(self, message_id: str, event: bytes) -> None: ...
    async def retry(self, tier: int, key: bytes, value: bytes) -> None: ...
    async def rendered(self, key: bytes, value: bytes) -> None: ...


class Records(Protocol):
    async def finished_event(self, message_id: str) -> bytes | None: ...
    async def record(self, message_id: str, outcome: str, event: bytes) -> None: ...


class Finish:
    def __init__(
        self,
        *,
        records: Records,
        publisher: Publisher,
        schedule: RetrySchedule,
        policy: Policy,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.records = records
        self.publisher = publisher
        self.schedule = schedule
        self.policy = policy
        self.now = now

    async def __call__(self, a: Attempt, result: StepResult) -> str:
        """Returns the label counted in the outcomes metric."""
        msg = a.msg
        if isinstance(result, Replayed):
            await self.publisher.delivery(msg.message_id, result.event)
            return "replayed"
        if isinstance(result, Rerouted):
            moved = dataclasses.replace(msg, sending_ip=result.sending_ip)
            await self.publisher.rendered(result.sending_ip.encode(), encode(moved))
            return "rerouted"
        if isinstance(result, Deferred):
            now = self.now()
            first = msg.first_attempt_at or a.started
            nxt = self.schedule.next_attempt(
                attempt=msg.attempt, first_attempt_at=first, now=now, retry_after=result.retry_after
            )
            if nxt is not None:
                not_before, tier = nxt
                again = dataclasses.replace(
                    msg,
                    attempt=msg.attempt + 1,
                    first_attempt_at=first,
                    not_before=not_before,
                    recipients=a.pending_recipients or msg.recipients,
                )
                await self.publisher.retry(tier, msg.sending_ip.encode(), encode(again))
                await self.publisher.delivery(msg.message_id, encode(delivery_event(a, result)))
                return "deferred"
            expired = self.policy.expired_bounce
            result = Bounced(
                result.code,
                f"expired after {msg.attempt + 1} attempts: {result.reply}",
                result.remote_host,
                expired.label,
                expired.send_result,
            )
        if isinstance(result, Delivered) and a.recorded_event is not None:
            await self.publisher.delivery(msg.message_id, a.recorded_event)
            return "delivered"
        event = delivery_event(a, result)
        encoded = encode(event)
        await self.records.record(msg.message_id, event.outcome.value, encoded)
        await self.publisher.delivery(msg.message_id, encoded)
        return event.outcome.value.lower()

    async def record_delivered(self, a: Attempt, outcome: Delivered) -> None:
        """Called by Deliver while it still holds the connection slot (see pipeline.Deliver).

        The receiver has the message: its record is retried until the database takes it (a
        failed batch would be consumed again and the message sent twice)."""
        encoded = encode(delivery_event(a, outcome))
        await retrying(
            lambda: self.records.record(a.msg.message_id, DeliveryOutcome.DELIVERED.value, encoded),
            what=f"recording delivered message {a.msg.message_id}",
            transient=lambda exc: isinstance(exc, DATABASE_DOWN),
        )
        a.recorded_event = encoded


def delivery_event(a: Attempt, outcome: Outcome) -> DeliveryAttempted:
    msg: EmailRendered = a.msg
    code = reply = remote = bounce_class = None
    if isinstance(outcome, Delivered):
        kind, result = DeliveryOutcome.DELIVERED, SendResult.SENT.value
        code, reply, remote = outcome.code, outcome.reply, outcome.remote_host
    elif isinstance(outcome, Deferred):
        kind, result = DeliveryOutcome.DEFERRED, SendResult.QUEUED.value
        code, reply, remote = outcome.code, outcome.reply, outcome.remote_host
    elif isinstance(outcome, Bounced):
        kind, result = DeliveryOutcome.BOUNCED, outcome.send_result
        code, reply, remote, bounce_class = outcome.code, outcome.reply, outcome.remote_host, outcome.bounce_class
    elif isinstance(outcome, Dropped):
        kind, result, reply = DeliveryOutcome.DROPPED, outcome.send_result, outcome.reason
    else:  # pragma: no cover - closed set
        raise TypeError(outcome)
    return DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=msg.message_id,
        status_id=msg.status_id,
        account_id=msg.account_id,
        email_id=msg.email_id,
        smtp_token_id=msg.smtp_token_id,
        recipient=msg.recipients[0],
        outcome=kind,
        send_result=result,
        bounce_class=bounce_class,
        smtp_code=code,
        smtp_reply=(reply or "")[:1000] or None,
        sending_ip=(a.source.address if a.source else msg.sending_ip),
        remote_host=remote,
        attempt=msg.attempt,
        started_at=a.started,
        occurred_at=datetime.now(UTC),
        custom_args=msg.custom_args,
        categories=msg.categories,
    )
