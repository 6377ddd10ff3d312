"""Late bounces: DSNs (RFC 3464) mailed to a return path -> the delivery event of a synchronous
bounce, classified with the sender's bounce table; auto-replies, delays and unparsable reports
dropped with the reason. And what a late bounce does to the batch plan and the statistics."""

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailstream.schemas import DeliveryAttempted, DeliveryOutcome
from mailstream.schemas.bounces import BounceTable
from mailstream.tracker import handlers, suppression
from mailstream.tracker.dsn import NotADsn, parse_dsn
from mailstream.tracker.engagement import TrackedMessage
from mailstream.tracker.late_bounces import LateBounces
from mailstream.tracker.stats import StatsKey, summed

T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
TABLE = BounceTable.load(Path(__file__).resolve().parents[4] / "deploy/policy/bounces.toml")
MESSAGE = TrackedMessage(str(uuid.UUID(int=1)), 1, ("jane@example.com", "cc@example.com"), 7, "tok-1")
STATUS = str(uuid.UUID(int=1001))


def dsn(
    action="failed",
    status="5.1.1",
    diagnostic="smtp; 550 5.1.1 <jane@example.com>: User unknown",
    recipient="jane@example.com",
    extra=b"",
) -> bytes:
    return (
        b"From: MAILER-DAEMON@mx.example.com\r\nTo: b-x@bounces.shop.example\r\nSubject: Undelivered Mail\r\n"
        b"Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        + extra
        + b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        b"--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.com\r\nArrival-Date: Thu, 3 Dec 2026 12:00:00 +0000\r\n\r\n"
        + f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\nRemote-MTA: dns; mx2.example.com\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n".encode()
        + b"\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <m@shop.example>\r\n\r\n--B--\r\n"
    )


OUT_OF_OFFICE = (
    b"From: jane@example.com\r\nTo: b-x@bounces.shop.example\r\nSubject: Out of office: Your order\r\n"
    b"Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\nContent-Type: text/plain\r\n\r\nI am away until Monday.\r\n"
)


class Messages:
    def __init__(self, msg=MESSAGE):
        self.msg = msg

    async def find(self, message_id):
        return self.msg if self.msg and message_id == self.msg.message_id else None

    async def status_id(self, message_id):
        return STATUS if self.msg and message_id == self.msg.message_id else None


def late_bounces(msg=MESSAGE):
    published = []

    async def publish(evt):
        published.append(evt)

    return LateBounces(table=TABLE, messages=Messages(msg), publish=publish, clock=lambda: T0), published


class TestParsing:
    def test_a_failed_recipient_with_its_status_diagnostic_and_remote_mta(self):
        (s,) = parse_dsn(dsn())
        assert (s.recipient, s.action, s.status, s.smtp_code, s.remote_mta) == (
            "jane@example.com",
            "failed",
            "5.1.1",
            550,
            "mx2.example.com",
        )
        assert s.is_bounce and s.diagnostic == "550 5.1.1 <jane@example.com>: User unknown"

    @pytest.mark.parametrize(
        ("action", "status"), [("delayed", "4.4.7"), ("delivered", "2.0.0"), ("relayed", "2.0.0"), ("failed", "4.2.2")]
    )
    def test_only_a_permanent_failure_is_a_bounce(self, action, status):
        (s,) = parse_dsn(dsn(action, status))
        assert not s.is_bounce

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (OUT_OF_OFFICE, "auto-reply"),
            (b"From: a@b\r\nX-Autoreply: yes\r\n\r\naway\r\n", "auto-reply (X-Autoreply)"),
            (b"From: a@b\r\nSubject: hello\r\n\r\nhi\r\n", "not a multipart/report"),
            (b"\x00\xff garbage", "not a multipart/report"),
            (
                b'Content-Type: multipart/report; report-type=feedback-report; boundary="B"\r\n\r\n--B--\r\n',
                "not a multipart/report; report-type=delivery-status",
            ),
            (
                b'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
                b"--B\r\nContent-Type: text/plain\r\n\r\nsorry\r\n--B--\r\n",
                "no message/delivery-status part",
            ),
            (dsn(status="not-a-status"), "no per-recipient fields"),
        ],
    )
    def test_what_is_not_a_dsn_says_why(self, raw, reason):
        with pytest.raises(NotADsn, match=reason.replace("(", r"\(").replace(")", r"\)")):
            parse_dsn(raw)


class TestTaking:
    async def test_a_dsn_is_the_delivery_event_of_a_synchronous_hard_bounce(self):
        taken, published = late_bounces()
        result = await taken.take(MESSAGE.message_id, dsn())
        (evt,) = published
        assert result.events == published and not result.dropped
        assert (evt.outcome, evt.late_report, evt.bounce_class, evt.send_result) == (
            DeliveryOutcome.BOUNCED,
            True,
            "hard:InvalidRecipient",
            "UNDELIVERABLE",
        )
        assert (evt.message_id, evt.status_id, evt.account_id, evt.email_id, evt.smtp_token_id) == (
            MESSAGE.message_id,
            STATUS,
            1,
            7,
            "tok-1",
        )
        assert (evt.recipient, evt.smtp_code, evt.remote_host, evt.occurred_at) == (
            "jane@example.com",
            550,
            "mx2.example.com",
            T0,
        )
        assert suppression.on_bounce(evt).reason == "BOUNCED"  # the same suppression as a 5xx reply

    async def test_the_same_table_classifies_it_exchange_and_a_full_mailbox(self):
        taken, published = late_bounces()
        await taken.take(
            MESSAGE.message_id,
            dsn(
                status="5.1.10",
                recipient="cc@example.com",
                diagnostic="smtp; 550 5.1.10 RESOLVER.ADR.RecipientNotFound",
            ),
        )
        await taken.take(MESSAGE.message_id, dsn(status="5.2.2", diagnostic="smtp; 552 5.2.2 Mailbox full"))
        assert [(e.recipient, e.bounce_class) for e in published] == [
            ("cc@example.com", "hard:InvalidRecipient"),
            ("jane@example.com", "soft:QuotaIssues"),
        ]
        assert suppression.on_bounce(published[1]) is None  # a soft class does not suppress
        for evt in published:
            assert TABLE.classify(evt.smtp_code, evt.smtp_reply).label == evt.bounce_class

    @pytest.mark.parametrize(
        ("raw", "reason"),
        [
            (OUT_OF_OFFICE, "auto-reply (Auto-Submitted: auto-replied)"),
            (dsn("delayed", "4.4.7"), "not a bounce: Action delayed, Status 4.4.7"),
            (b"nonsense", "not a multipart/report; report-type=delivery-status (text/plain)"),
        ],
    )
    async def test_auto_replies_delays_and_unparsable_mail_are_dropped_with_the_reason(self, raw, reason):
        taken, published = late_bounces()
        result = await taken.take(MESSAGE.message_id, raw)
        assert published == [] and dict(result.dropped) == {reason: 1}

    async def test_a_forwarded_address_is_bounced_under_the_recipient_we_sent_to(self):
        taken, published = late_bounces()
        forwarded = dsn(recipient="jane@elsewhere.example").replace(
            b"Original-Recipient: rfc822;jane@elsewhere.example", b"Original-Recipient: rfc822;cc@example.com"
        )
        await taken.take(MESSAGE.message_id, forwarded)
        assert [e.recipient for e in published] == ["cc@example.com"]

    async def test_a_recipient_that_is_none_of_the_messages_is_not_bounced(self):
        taken, published = late_bounces()
        result = await taken.take(MESSAGE.message_id, dsn(recipient="stranger@elsewhere.example"))
        assert published == [] and dict(result.dropped) == {
            "recipient stranger@elsewhere.example is not one of the message's": 1
        }
        single = TrackedMessage(MESSAGE.message_id, 1, ("jane@example.com",))
        taken, published = late_bounces(single)
        await taken.take(MESSAGE.message_id, dsn(recipient="jane@relay.example"))
        assert [e.recipient for e in published] == ["jane@example.com"]  # the only one it can be

    async def test_a_late_bounce_carries_the_messages_custom_args_and_categories(self):
        annotated = TrackedMessage(
            MESSAGE.message_id, 1, ("jane@example.com",), custom_args={"order": "42"}, categories=("receipt",)
        )
        taken, published = late_bounces(annotated)
        await taken.take(MESSAGE.message_id, dsn())
        assert [(e.custom_args, e.categories) for e in published] == [({"order": "42"}, ("receipt",))]

    async def test_a_dsn_for_a_message_the_tracker_does_not_know_is_dropped(self):
        taken, published = late_bounces(msg=None)
        result = await taken.take(MESSAGE.message_id, dsn())
        assert published == [] and dict(result.dropped) == {"unknown message": 1}


def event(late: bool, outcome=DeliveryOutcome.BOUNCED, result="UNDELIVERABLE") -> DeliveryAttempted:
    return DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=MESSAGE.message_id,
        status_id=STATUS,
        account_id=1,
        recipient="jane@example.com",
        outcome=outcome,
        send_result=result,
        occurred_at=T0,
        email_id=7,
        bounce_class="hard:InvalidRecipient" if outcome is DeliveryOutcome.BOUNCED else None,
        late_report=late,
    )


class TestStatistics:
    def test_a_late_bounce_of_a_delivered_message_moves_it_from_delivered_to_bounced(self):
        delivered, late = event(False, DeliveryOutcome.DELIVERED, "SENT"), event(True)
        first = handlers.plan_batch([delivered])
        counted = summed(handlers.increments(first, handlers.Written(changed_statuses={uuid.UUID(STATUS)})))
        second = handlers.plan_batch([late])
        assert [s.reason for s in second.suppressions] == ["BOUNCED"]
        assert second.statuses[0].bounce_class == "hard:InvalidRecipient"
        moved = summed(handlers.increments(second, handlers.Written(late_bounced={uuid.UUID(STATUS)})))
        account = StatsKey(1, "account", "1")
        assert counted[account] == {"delivered": 1} and moved[account] == {"delivered": -1, "bounced": 1}

    def test_a_late_bounce_before_its_delivery_is_counted_bounced_once(self):
        plan = handlers.plan_batch([event(True), event(False, DeliveryOutcome.DELIVERED, "SENT")])
        assert plan.statuses[0].send_result == "UNDELIVERABLE"  # the first COMPLETE wins
        counted = summed(handlers.increments(plan, handlers.Written(changed_statuses={uuid.UUID(STATUS)})))
        assert counted[StatsKey(1, "account", "1")] == {"bounced": 1}

    def test_a_late_bounce_the_database_did_not_apply_counts_nothing(self):
        plan = handlers.plan_batch([event(True)])
        assert summed(handlers.increments(plan, handlers.Written())) == {}
