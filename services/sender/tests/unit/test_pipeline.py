"""The delivery steps with a fake transport and record store (no sockets)."""

from datetime import UTC, datetime

import aiosmtplib
import pytest

from mailstream.schemas import DeliveryOutcome, EmailRendered, SubscriptionType, decode
from mailstream.sender import pipeline as pipeline_module
from mailstream.sender.outcomes import Bounced, Deferred, Delivered, classify_smtp_error
from mailstream.sender.pipeline import Pipeline

MSG = EmailRendered(
    message_id="m-1",
    status_id="s-1",
    account_id=1,
    subscription_type=SubscriptionType.TRANSACTIONAL,
    mail_from="orders@shop.example",
    recipients=("jane@example.com",),
    pool="shared",
    sending_ip="127.0.0.2",
    sending_domain="shop.example",
    mime=b"Subject: x\r\n\r\nbody\r\n",
    requested_at=datetime.now(UTC),
    rendered_at=datetime.now(UTC),
)


class FakeTransport:
    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = []

    async def deliver(self, route, mail_from, recipients, mime):
        self.calls.append((route, mail_from, recipients))
        return self.outcomes.pop(0)


class FakeRecords:
    def __init__(self):
        self.rows = {}

    async def finished_event(self, message_id):
        return self.rows.get(message_id, (None, None))[1]

    async def record(self, message_id, outcome, event):
        self.rows.setdefault(message_id, (outcome, event))


def make(transport):
    published = []

    async def publish(message_id, event):
        published.append((message_id, decode(event)))

    return Pipeline(transport=transport, records=FakeRecords(), publish=publish, relay=("127.0.0.1", 2525)), published


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch):
    monkeypatch.setattr(pipeline_module, "QUICK_RETRY_DELAYS", (0, 0))


async def test_delivers_from_the_assigned_ip_and_publishes_delivered():
    transport = FakeTransport(Delivered(250, "OK"))
    p, published = make(transport)
    await p.handle(MSG)
    assert transport.calls == [(("127.0.0.1", 2525, "127.0.0.2"), "orders@shop.example", ["jane@example.com"])]
    ((key, event),) = published
    assert key == "m-1" and event.outcome is DeliveryOutcome.DELIVERED and event.send_result == "SENT"
    assert event.sending_ip == "127.0.0.2"


async def test_a_redelivered_record_is_not_sent_again_but_its_outcome_is_republished():
    transport = FakeTransport(Delivered(250, "OK"))
    p, published = make(transport)
    await p.handle(MSG)
    await p.handle(MSG)
    assert len(transport.calls) == 1
    assert [e.event_id for _, e in published] == [published[0][1].event_id] * 2


async def test_deferrals_are_retried_then_delivered():
    transport = FakeTransport(Deferred(421, "busy"), Delivered(250, "OK"))
    p, published = make(transport)
    await p.handle(MSG)
    assert len(transport.calls) == 2 and published[-1][1].outcome is DeliveryOutcome.DELIVERED


async def test_a_hard_bounce_is_final():
    transport = FakeTransport(Bounced(550, "5.1.1 unknown user"))
    p, published = make(transport)
    await p.handle(MSG)
    event = published[-1][1]
    assert (event.outcome, event.smtp_code, event.send_result) == (DeliveryOutcome.BOUNCED, 550, "UNDELIVERABLE")


def test_classifies_replies():
    assert isinstance(classify_smtp_error(aiosmtplib.SMTPResponseException(421, "try later")), Deferred)
    assert isinstance(classify_smtp_error(aiosmtplib.SMTPResponseException(552, "too big")), Bounced)
    assert isinstance(classify_smtp_error(aiosmtplib.SMTPServerDisconnected("gone")), Deferred)
    assert isinstance(classify_smtp_error(TimeoutError()), Deferred)
    refused = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no such user", "x@y")])
    assert classify_smtp_error(refused) == Bounced(550, "no such user")
