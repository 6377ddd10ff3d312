"""The tracker's adapters, each against its one real component: PostgreSQL, and an SMTP client."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime

import aiosmtplib
import pytest

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, SuppressionAction, SuppressionChanged
from mailstream.schemas.return_paths import ReturnPaths
from mailstream.tracker.adapters import messages, stats
from mailstream.tracker.adapters.email_events import record_all
from mailstream.tracker.adapters.outcomes import apply_late_bounces, apply_statuses, status_of_message
from mailstream.tracker.adapters.smtp_intake import InboundHandler, serve_smtp
from mailstream.tracker.adapters.suppressions import already_reported, apply_changes, suppress_all
from mailstream.tracker.engagement import Annotation, TrackedMessage
from mailstream.tracker.events import EmailEvent
from mailstream.tracker.feedback import NotAReport
from mailstream.tracker.settings import TrackerSettings
from mailstream.tracker.stats import StatsKey
from mailstream.tracker.statuses import StatusChange
from mailstream.tracker.suppression import Suppression

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)


@pytest.fixture
async def pool():
    pool = await create_pool(TrackerSettings.from_env().database_url, max_size=2)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "tracker", migrations_of("mailstream.tracker"))
    yield pool
    await pool.close()


def account() -> int:
    return 800_000_000 + random.randrange(10_000_000)


async def test_a_rendered_message_is_remembered_once_and_found_by_id(pool):
    msg = TrackedMessage(str(uuid.uuid4()), account(), ("jane@example.com", "cc@example.com"), 7, "tok")
    async with pool.acquire() as conn:
        assert await messages.remember_all(conn, [(msg, NOW)]) == {uuid.UUID(msg.message_id)}
        assert await messages.remember_all(conn, [(msg, NOW)]) == set()  # a redelivered record
    assert await messages.find(pool, msg.message_id) == msg
    assert await messages.find(pool, str(uuid.uuid4())) is None
    assert await messages.find(pool, "not-a-uuid") is None
    with_args = TrackedMessage(str(uuid.uuid4()), msg.account_id, ("jane@example.com",), custom_args={"order": "7"})
    with_both = TrackedMessage(
        str(uuid.uuid4()), msg.account_id, ("joe@example.com",), custom_args={"a": "1"}, categories=("receipt", "eu")
    )
    async with pool.acquire() as conn:
        await messages.remember_all(conn, [(with_args, NOW), (with_both, NOW)])
        found = await messages.find_all(conn, {uuid.UUID(m.message_id) for m in (msg, with_args, with_both)})
    assert found == {uuid.UUID(m.message_id): m for m in (msg, with_args, with_both)}
    assert await messages.find(pool, with_both.message_id) == with_both
    stored = await pool.fetch(
        "SELECT custom_args, categories FROM tracked_messages WHERE message_id = ANY($1::uuid[])",
        [uuid.UUID(msg.message_id), uuid.UUID(with_args.message_id)],
    )
    assert [r["categories"] for r in stored] == [None, None]  # nothing stored for a message without them


async def test_an_annotated_links_message_gives_its_custom_args_and_categories(pool):
    acct = account()
    both = TrackedMessage(
        str(uuid.uuid4()), acct, ("jane@example.com",), custom_args={"order": "42"}, categories=("receipt",)
    )
    args_only = TrackedMessage(str(uuid.uuid4()), acct, ("joe@example.com",), custom_args={"order": "43"})
    async with pool.acquire() as conn:
        await messages.remember_all(conn, [(both, NOW), (args_only, NOW)])
    annotations = messages.MessageAnnotations(pool)
    assert await annotations.of(both.message_id) == Annotation({"order": "42"}, ("receipt",))
    assert await annotations.of(args_only.message_id) == Annotation({"order": "43"}, ())
    assert await annotations.of(str(uuid.uuid4())) is None  # not (yet) rendered: no row
    assert await messages.annotation_of(pool, "not-a-uuid") is None


async def test_a_suppression_is_recorded_once_per_reason(pool):
    acct, message_id = account(), str(uuid.uuid4())
    spam = Suppression(acct, "jane@example.com", "SPAM_REPORT", message_id, "SPAM_REPORT")
    assert not await already_reported(pool, acct, "Jane@Example.com", message_id)
    async with pool.acquire() as conn:
        await suppress_all(conn, [spam, Suppression(acct, "jane@example.com", "UNSUBSCRIBED", None, "LINK")])
        await suppress_all(conn, [spam])  # the first reason of its kind is kept
    assert await already_reported(pool, acct, "Jane@Example.com", message_id)
    assert not await already_reported(pool, acct, "jane@example.com", str(uuid.uuid4()))
    count = await pool.fetchval("SELECT count(*) FROM suppressions WHERE account_id = $1", acct)
    assert count == 2


async def test_statistics_increments_add_up_per_row(pool):
    acct = account()
    key = StatsKey(acct, "email", "42")
    async with pool.acquire() as conn:
        await stats.add(conn, {key: {"opens_total": 3, "delivered": 2}})
        await stats.add(conn, {key: {"opens_total": 5, "clicks_total": 1}})  # the same row, later
    row = await pool.fetchrow("SELECT * FROM stats WHERE account_id = $1 AND dimension = 'email'", acct)
    assert (row["opens_total"], row["delivered"], row["clicks_total"], row["sent"]) == (8, 2, 1, 0)


async def test_only_the_first_completion_changes_the_status_row(pool):
    status_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    processing = StatusChange(status_id, message_id, account(), "PROCESSING", started_at=NOW)
    complete = StatusChange(
        status_id, message_id, processing.account_id, "COMPLETE", NOW, "SENT", NOW, str(uuid.uuid4()), NOW
    )
    async with pool.acquire() as conn:
        assert await apply_statuses(conn, [processing]) == {uuid.UUID(status_id)}
        assert await apply_statuses(conn, [complete]) == {uuid.UUID(status_id)}
        assert await apply_statuses(conn, [complete]) == set()  # counted once
        assert await apply_statuses(conn, [processing]) == set()  # never moves back


async def test_the_feedback_address_answers_250_for_a_report_and_550_for_other_mail():
    taken = []

    async def take(raw: bytes) -> dict[str, int]:
        if b"feedback-report" not in raw:
            raise NotAReport("not a report")
        taken.append(raw)
        return {"spamReports": 1}

    server = await serve_smtp(InboundHandler(take_arf=take, report_sources=("127.0.0.0/8",)), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        report = b"Content-Type: multipart/report; report-type=feedback-report\r\n\r\nx\r\n"
        errors, reply = await aiosmtplib.send(report, sender="a@example.com", recipients=["fbl@example.com"], port=port)
        assert errors == {} and reply.startswith("2.0.0")
        assert taken and taken[0].startswith(b"Content-Type: multipart/report")
        with pytest.raises(aiosmtplib.SMTPDataError) as refused:
            await aiosmtplib.send(
                b"Subject: hi\r\n\r\nhi\r\n", sender="a@example.com", recipients=["f@x.example"], port=port
            )
        assert refused.value.code == 550
    finally:
        server.close()
        await server.wait_closed()


async def test_a_late_bounce_turns_a_delivered_status_bounced_once(pool):
    status_id, message_id, acct = str(uuid.uuid4()), str(uuid.uuid4()), account()
    delivered = StatusChange(status_id, message_id, acct, "COMPLETE", NOW, "SENT", NOW, str(uuid.uuid4()), NOW)
    late = DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=message_id,
        status_id=status_id,
        account_id=acct,
        recipient="jane@example.com",
        outcome=DeliveryOutcome.BOUNCED,
        send_result="UNDELIVERABLE",
        occurred_at=NOW,
        bounce_class="hard:InvalidRecipient",
        late_report=True,
    )
    key = uuid.UUID(status_id)
    async with pool.acquire() as conn:
        assert await apply_late_bounces(conn, {key: late}) == set()  # nothing to turn yet
        assert await apply_statuses(conn, [delivered]) == {key}
        assert await apply_late_bounces(conn, {key: late}) == {key}
        assert await apply_late_bounces(conn, {key: late}) == set()  # a repeated DSN changes nothing
    row = await pool.fetchrow("SELECT * FROM send_outcome_statuses WHERE status_id = $1", key)
    assert (row["status"], row["send_result"], row["bounce_class"]) == ("COMPLETE", "UNDELIVERABLE", late.bounce_class)
    assert row["event_id"] == uuid.UUID(delivered.event_id)  # it was sent: the SENT event stays
    assert await status_of_message(pool, message_id) == status_id
    assert await status_of_message(pool, str(uuid.uuid4())) is None


async def test_mail_to_a_return_path_is_a_dsn_and_a_forged_return_path_gets_550():
    paths = ReturnPaths({"k1": b"integration-test-key-0123456789"})
    message_id = str(uuid.uuid4())
    dsns, arfs = [], []

    async def take_dsn(mid: str, raw: bytes):
        dsns.append((mid, raw))

    async def take_arf(raw: bytes) -> dict[str, int]:
        arfs.append(raw)
        return {"spamReports": 1}

    # reports only from a network this client is not in; DSNs to return paths from anyone
    handler = InboundHandler(take_arf=take_arf, take_dsn=take_dsn, return_paths=paths, report_sources=("192.0.2.0/24",))
    server = await serve_smtp(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    address = paths.address(message_id, "bounces.shop.example")
    try:
        errors, _ = await aiosmtplib.send(
            b"Subject: x\r\n\r\nreport\r\n", sender="mailer-daemon@mx.example", recipients=[address.upper()], port=port
        )
        assert errors == {} and dsns == [(message_id, b"Subject: x\r\n\r\nreport\r\n")]
        forged = address[:30] + ("a" if address[30] != "a" else "b") + address[31:]  # a character of the MAC
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await aiosmtplib.send(
                b"Subject: x\r\n\r\nx\r\n", sender="mailer-daemon@mx.example", recipients=[forged], port=port
            )
        assert refused.value.recipients[0].code == 550
        with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
            await aiosmtplib.send(
                b"Subject: arf\r\n\r\nx\r\n", sender="a@x.example", recipients=["fbl@x.example"], port=port
            )
        assert refused.value.recipients[0].code == 550 and "configured sources" in refused.value.recipients[0].message
        assert arfs == [] and len(dsns) == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_a_requested_change_lifts_or_adds_suppressions_and_is_kept_in_the_history(pool):
    acct = account()
    bounce = Suppression(acct, "jane@example.com", "BOUNCED", None, "550")
    unsub = Suppression(acct, "jane@example.com", "UNSUBSCRIBED", None, "LINK")

    def change(action, reason):
        return SuppressionChanged(
            event_id=str(uuid.uuid4()),
            account_id=acct,
            address="Jane@Example.com",
            action=action,
            occurred_at=NOW,
            reason=reason,
            note="why",
            requested_by="api-key:1",
        )

    lift, again, everything = (
        change(SuppressionAction.REMOVE, "BOUNCED"),
        change(SuppressionAction.REMOVE, "BOUNCED"),
        change(SuppressionAction.REMOVE, None),
    )
    async with pool.acquire() as conn:
        await suppress_all(conn, [bounce, unsub])
        assert await apply_changes(conn, [lift, again]) == [["BOUNCED"], []]
        assert await apply_changes(
            conn, [change(SuppressionAction.ADD, "BOUNCED"), change(SuppressionAction.ADD, "MANUAL"), everything]
        ) == [["BOUNCED"], ["MANUAL"], ["BOUNCED", "MANUAL", "UNSUBSCRIBED"]]
        history = await conn.fetch(
            "SELECT action, reason, changed, note, requested_by FROM suppression_history WHERE account_id = $1"
            " ORDER BY applied_at, event_id",
            acct,
        )
        left = await conn.fetchval("SELECT count(*) FROM suppressions WHERE account_id = $1", acct)
    assert left == 0 and len(history) == 5
    assert {(h["action"], h["reason"], tuple(h["changed"])) for h in history} == {
        ("REMOVE", "BOUNCED", ("BOUNCED",)),
        ("REMOVE", "BOUNCED", ()),
        ("ADD", "BOUNCED", ("BOUNCED",)),
        ("ADD", "MANUAL", ("MANUAL",)),  # the account's own block (migration 0010)
        ("REMOVE", None, ("BOUNCED", "MANUAL", "UNSUBSCRIBED")),
    }
    assert {(h["note"], h["requested_by"]) for h in history} == {("why", "api-key:1")}


async def test_email_events_are_recorded_once_by_id(pool):
    acct = account()
    event = EmailEvent(uuid.uuid4(), acct, "OPEN", NOW, "jane@example.com", str(uuid.uuid4()), 7, None, {"url": "u"})
    async with pool.acquire() as conn:
        await record_all(conn, [event, event])
        await record_all(conn, [event])  # a record read again
        rows = await conn.fetch("SELECT type, detail FROM email_event_log WHERE account_id = $1", acct)
    assert [(r["type"], json.loads(r["detail"])) for r in rows] == [("OPEN", {"url": "u"})]
