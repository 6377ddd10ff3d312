"""One rendered message through the delivery steps, ending in exactly one outcome event.

Steps: skip if already finished (redelivered record) -> deliver from the assigned source IP
(quick retries of deferrals) -> record the outcome -> publish it. The caller commits the
offset only after this returns.

The remaining duplicate window, stated honestly: if the process dies after the receiving
server accepted DATA and before the delivery record is written (one INSERT), the record is
consumed again and the message is sent a second time.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, EmailRendered, SendResult, encode
from mailstream.sender.adapters.deliveries import DeliveryRecords
from mailstream.sender.adapters.smtp import Route, SmtpTransport
from mailstream.sender.outcomes import Bounced, Deferred, Delivered, Outcome

Publish = Callable[[str, bytes], Awaitable[None]]  # (message id, encoded DeliveryAttempted)

# Until the delay topics arrive (issue 5), deferrals are retried in-process this many times.
QUICK_RETRY_DELAYS = (1.0, 3.0)


@dataclass
class Pipeline:
    transport: SmtpTransport
    records: DeliveryRecords
    publish: Publish
    relay: tuple[str, int] | None

    def route(self, msg: EmailRendered) -> Route:
        if self.relay is None:
            raise NotImplementedError("direct-to-MX delivery is not built yet: set MAILSTREAM_SENDER_RELAY")
        return (self.relay[0], self.relay[1], msg.sending_ip)

    async def handle(self, msg: EmailRendered) -> None:
        previous = await self.records.finished_event(msg.message_id)
        if previous is not None:
            await self.publish(msg.message_id, previous)
            return
        started = datetime.now(UTC)
        outcome = await self.deliver(msg)
        event = outcome_event(msg, outcome, started)
        encoded = encode(event)
        if not isinstance(outcome, Deferred):
            await self.records.record(msg.message_id, event.outcome.value, encoded)
        await self.publish(msg.message_id, encoded)

    async def deliver(self, msg: EmailRendered) -> Outcome:
        route = self.route(msg)
        outcome = await self.transport.deliver(route, msg.mail_from, list(msg.recipients), msg.mime)
        for delay in QUICK_RETRY_DELAYS:
            if not isinstance(outcome, Deferred):
                break
            await asyncio.sleep(delay)
            outcome = await self.transport.deliver(route, msg.mail_from, list(msg.recipients), msg.mime)
        return outcome


_RESULTS = {
    Delivered: (DeliveryOutcome.DELIVERED, SendResult.SENT),
    Deferred: (DeliveryOutcome.DEFERRED, SendResult.QUEUED),
    Bounced: (DeliveryOutcome.BOUNCED, SendResult.UNDELIVERABLE),
}


def outcome_event(msg: EmailRendered, outcome: Outcome, started: datetime) -> DeliveryAttempted:
    kind, result = _RESULTS[type(outcome)]
    return DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=msg.message_id,
        status_id=msg.status_id,
        account_id=msg.account_id,
        email_id=msg.email_id,
        smtp_token_id=msg.smtp_token_id,
        recipient=msg.recipients[0],
        outcome=kind,
        send_result=result.value,
        smtp_code=outcome.code,
        smtp_reply=outcome.reply[:1000],
        sending_ip=msg.sending_ip,
        attempt=msg.attempt,
        started_at=started,
        occurred_at=datetime.now(UTC),
    )
