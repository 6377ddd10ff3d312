"""The tracker through its public surfaces: tracking links, feedback-loop intake (HTTP, SMTP, SES),
the Kafka topics it publishes and consumes, and the tables it owns (send_outcomes, suppressions, stats).

Links are signed here with the stack's link-signing keys for messages the test really sent (the
message id is the X-Mailstream-ID header of the mail at the sink), as the renderer signs them.
"""

from __future__ import annotations

import asyncio
import base64
import email
import json
import random
import re
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path

import aiosmtplib
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from kafka_tail import Tail
from sns_signing import SnsSigner

from mailstream.core.settings import LinkSettings
from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EngagementKind,
    EngagementRecorded,
    UnsubscribeReason,
    UnsubscribeRecorded,
    encode,
)
from mailstream.schemas.links import LinkKind, LinkSigner, TrackedLink
from mailstream.schemas.topics import DELIVERY, ENGAGEMENT, UNSUBSCRIBE
from mailstream.tracker.settings import TrackerSettings
from testkit import db_fetch, db_rows, dev_feedback, link_scanner_pause

pytestmark = pytest.mark.e2e

SETTINGS = LinkSettings.from_env()
SIGNER = LinkSigner.from_setting(SETTINGS.link_signing_keys)
TRACKER = SETTINGS.tracking_base_url
ARF_AUTH = {"Authorization": f"Bearer {dev_feedback('FEEDBACK_ARF_SECRET')}"}
FEEDBACK_SMTP = ("127.0.0.1", 2591)  # TrackerSettings.feedback_smtp_port's default
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
MAILSTREAM_CLI = str(Path(sys.executable).with_name("mailstream"))


# --- helpers -------------------------------------------------------------------------------------


class Sent:
    def __init__(
        self,
        *,
        message_id: str,
        status_id: str,
        account_id: int,
        email_id: int,
        to: str,
        data: str,
        received_at: datetime,
    ):
        self.message_id, self.status_id, self.account_id = message_id, status_id, account_id
        self.email_id, self.to, self.data = email_id, to, data
        self.received_at = received_at  # at the sink; the sender's delivery time is a little later

    def link(self, kind: LinkKind, url: str | None = None, token: str | None = None) -> str:
        return SIGNER.url(
            TRACKER, TrackedLink(kind, self.message_id, self.account_id, self.to, self.email_id, token, url)
        )


ORDER_HTML = '<p>Order {{ custom.order_id }}. <a href="https://shop.example/orders">See it</a></p>'
NEWS_HTML = '<p>News</p><a href="https://shop.example/sale">Sale</a> <a href="{{ unsubscribe_link }}">Unsubscribe</a>'


async def create_email(api, key: str, subscription: str = "TRANSACTIONAL", html: str = ORDER_HTML) -> int:
    headers = {"Authorization": f"Bearer {key}"}
    created = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={
            "name": "Receipt",
            "subject": "Order {{ custom.order_id }}",
            "fromName": "Shop",
            "fromEmail": "orders@shop.example",
            "html": html,
            "subscriptionType": subscription,
        },
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    converted = await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=headers)
    assert converted.status_code == 200, converted.text
    return email_id


async def send(api, sink, key: str, email_id: int, to: str) -> Sent:
    reply = await api.post(
        "/marketing/v3/transactional/single-email/send",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "emailId": email_id,
            "message": {"to": to, "sendId": str(uuid.uuid4())},
            "customProperties": {"order_id": "1001"},
        },
    )
    assert reply.status_code == 200, reply.text
    status_id = reply.json()["statusId"]
    (received,) = await sink.wait_for(to, within=90)  # the shared stack may be busy with other suites
    msg = email.message_from_string(received["data"], policy=default)
    message_id = msg["X-Mailstream-ID"]
    # the tracker records the rendered message (account, recipients, email, token)
    rows = await db_rows(
        "SELECT account_id FROM tracked_messages WHERE message_id = $1", uuid.UUID(message_id), within=30
    )
    assert rows, f"the tracker never recorded message {message_id}"
    return Sent(
        message_id=message_id,
        status_id=status_id,
        account_id=rows[0]["account_id"],
        email_id=email_id,
        to=to,
        data=received["data"],
        received_at=datetime.fromisoformat(received["received_at"]),
    )


async def send_result_of_another_send(api, key: str, email_id: int, to: str) -> str:
    """Sends again to `to` and returns the send's final sendResult."""
    reply = await api.post(
        "/marketing/v3/transactional/single-email/send",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "emailId": email_id,
            "message": {"to": to, "sendId": str(uuid.uuid4())},
            "customProperties": {"order_id": "1002"},
        },
    )
    assert reply.status_code == 200, reply.text
    if reply.json().get("status") == "COMPLETE":
        return reply.json()["sendResult"]
    return (await wait_complete(api, key, reply.json()["statusId"])).get("sendResult")


async def wait_complete(api, key: str, status_id: str) -> dict:
    status = {}
    for _ in range(150):
        reply = await api.get(
            f"/marketing/v3/email/send-statuses/{status_id}", headers={"Authorization": f"Bearer {key}"}
        )
        status = reply.json()
        if status.get("status") == "COMPLETE":
            break
        await asyncio.sleep(0.1)
    return status


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def engagement_tail() -> Tail:
    return Tail(ENGAGEMENT, record_type=EngagementRecorded)


def unsubscribe_tail() -> Tail:
    return Tail(UNSUBSCRIBE, record_type=UnsubscribeRecorded)


def arf_report(original: str, recipient: str) -> bytes:
    """A feedback report built like RFC 5965's example, about `original` (the mail as received)."""
    boundary = f"part1_{uuid.uuid4().hex}_boundary"
    report = f"""From: <abusedesk@example.com>
Date: Thu, 8 Mar 2005 17:40:36 EDT
Subject: FW: Earn money
To: <abuse@example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.  For more information
about this format please see http://www.mipassoc.org/arf/.

--{boundary}
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Mail-From: <orders@shop.example>
Original-Rcpt-To: <{recipient}>
Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT
Reporting-MTA: dns; mail.example.com
Source-IP: 192.0.2.1
Removal-Recipient: {recipient}

--{boundary}
Content-Type: message/rfc822
Content-Disposition: inline

{original.replace(chr(13), "").strip()}

--{boundary}--
"""
    return report.replace("\n", "\r\n").encode()


def of(message_id: str, kind: EngagementKind | None = None):
    return lambda e: e.message_id == message_id and (kind is None or e.kind is kind)


@pytest.fixture
async def tracker():
    async with httpx.AsyncClient(base_url=TRACKER, timeout=10, follow_redirects=False) as client:
        yield client


async def send_one(api, new_account, sink, unique_address) -> Sent:
    """One TRANSACTIONAL message of a new account, delivered to the sink; `.key` is the account's key."""
    key = new_account("tracking")
    email_id = await create_email(api, key)
    sent = await send(api, sink, key, email_id, unique_address())
    sent.key = key
    return sent


@pytest.fixture
async def one_sent(stack, api, new_account, sink, unique_address):
    return await send_one(api, new_account, sink, unique_address)


# --- HTTP tracking: pixel, click, bad tokens --------------------------------------------------------


async def test_the_open_pixel_is_an_uncached_gif_and_publishes_an_open(one_sent, tracker):
    async with engagement_tail() as tail:
        reply = await tracker.get(one_sent.link(LinkKind.OPEN).removeprefix(TRACKER), headers={"User-Agent": BROWSER})
        (evt,) = await tail.collect(of(one_sent.message_id), count=1, settle=1.0)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "image/gif" and reply.content.startswith(b"GIF89a")
    assert "no-store" in reply.headers["Cache-Control"] and "no-cache" in reply.headers["Cache-Control"]
    assert reply.headers["Pragma"] == "no-cache" and reply.headers["Expires"] == "0"
    assert (evt.kind, evt.machine, evt.user_agent, evt.client_ip) == (EngagementKind.OPEN, False, BROWSER, "127.0.0.1")
    assert (evt.account_id, evt.email_id, evt.recipient) == (one_sent.account_id, one_sent.email_id, one_sent.to)
    assert evt.occurred_at.tzinfo is not None and evt.event_id


async def test_a_click_redirects_to_the_signed_target_and_publishes_a_click(one_sent, tracker):
    target = f"https://shop.example/orders/{uuid.uuid4().hex}?a=1&b=2"
    await asyncio.sleep(link_scanner_pause())  # past the link-scanner window after delivery
    async with engagement_tail() as tail:
        reply = await tracker.get(
            one_sent.link(LinkKind.CLICK, target).removeprefix(TRACKER), headers={"User-Agent": BROWSER}
        )
        (evt,) = await tail.collect(of(one_sent.message_id), count=1, settle=1.0)
    assert reply.status_code == 302 and reply.headers["Location"] == target
    assert (evt.kind, evt.url, evt.machine) == (EngagementKind.CLICK, target, False)


async def test_a_tampered_or_misused_token_is_a_404_without_event_or_redirect(one_sent, tracker):
    click = one_sent.link(LinkKind.CLICK, "https://shop.example/").removeprefix(TRACKER)
    payload, key_id, mac = click.split("/")[-1].split(".")
    forged = SIGNER.url(
        TRACKER,
        TrackedLink(LinkKind.CLICK, one_sent.message_id, one_sent.account_id, one_sent.to, url="https://evil.example/"),
    ).split("/")[-1]
    attempts = [
        f"/c/{payload}.{key_id}.{mac[:-2]}AA",  # bad MAC
        f"/c/{forged.split('.')[0]}.{key_id}.{mac}",  # another target with this link's MAC
        f"/c/{payload}.nokey.{mac}",  # unknown key id
        "/c/garbage",
        "/o/" + click.split("/")[-1],  # a click token on the open pixel
        "/c/" + one_sent.link(LinkKind.OPEN).split("/")[-1],  # an open token as a click
    ]
    async with engagement_tail() as tail:
        for path in attempts:
            reply = await tracker.get(path, headers={"User-Agent": BROWSER})
            assert reply.status_code == 404, path
            assert "Location" not in reply.headers
        assert await tail.collect(of(one_sent.message_id), count=1, within=3.0) == []


async def test_machine_opens_and_link_scanners_are_flagged(stack, api, new_account, sink, unique_address, tracker):
    window = TrackerSettings.from_env().link_scanner_window_s
    async with engagement_tail() as tail:
        # A click within the window of its delivery is a scanner's. The window may be short (1 s when
        # `make test` starts the tracker), and the tracker learns of a delivery from email.delivery a
        # little after the sink has the mail: if the stack was too slow to click within the window
        # as the tracker counts it, a new message; three that all count as a person's fail.
        scanned = []
        for _ in range(3):
            one_sent = await send_one(api, new_account, sink, unique_address)
            await wait_complete(api, one_sent.key, one_sent.status_id)  # delivered: the scanner window is open
            click = one_sent.link(LinkKind.CLICK, "https://shop.example/scan").removeprefix(TRACKER)
            assert (await tracker.get(click, headers={"User-Agent": BROWSER})).status_code == 302
            late = (datetime.now(UTC) - one_sent.received_at).total_seconds()
            scanned = await tail.collect(of(one_sent.message_id), count=1)
            if late <= window and [e.machine for e in scanned] == [True]:
                break
        else:
            pytest.fail(f"no click within the {window} s window counted as a scanner's (last: {late:.1f} s, {scanned})")
        opener = one_sent.link(LinkKind.OPEN).removeprefix(TRACKER)
        assert (await tracker.get(opener, headers={"User-Agent": GMAIL_PROXY})).status_code == 200
        assert (await tracker.get(opener, headers={"User-Agent": "Mozilla/5.0"})).status_code == 200  # Apple MPP
        assert (await tracker.head(opener, headers={"User-Agent": BROWSER})).status_code == 200
        events = await tail.collect(of(one_sent.message_id), count=4)
        assert [e.machine for e in events] == [True, True, True, True], events
        await asyncio.sleep(link_scanner_pause())  # out of the scanner window: a person
        assert (await tracker.get(click, headers={"User-Agent": BROWSER})).status_code == 302
        assert (await tracker.get(opener, headers={"User-Agent": BROWSER})).status_code == 200
        events = await tail.collect(of(one_sent.message_id), count=6)
    assert [(e.kind, e.machine) for e in events[4:]] == [(EngagementKind.CLICK, False), (EngagementKind.OPEN, False)]
    rows = []
    for _ in range(100):
        rows = await db_fetch(
            "SELECT * FROM stats WHERE account_id = $1 AND dimension = 'account'", one_sent.account_id
        )
        if rows and rows[0]["opens_total"] == 4:
            break
        await asyncio.sleep(0.2)
    (row,) = rows
    assert (row["opens_total"], row["opens_machine"], row["opens_unique_human"]) == (4, 3, 1)
    assert (row["clicks_total"], row["clicks_machine"], row["clicks_unique_human"]) == (2, 1, 1)


# --- feedback loops ---------------------------------------------------------------------------------


async def assert_one_spam_report_and_unsubscribe(sent: Sent, engagement: Tail, unsubscribes: Tail) -> None:
    reports = await engagement.collect(of(sent.message_id, EngagementKind.SPAM_REPORT), count=1, settle=3.0)
    unsubs = await unsubscribes.collect(lambda u: u.message_id == sent.message_id, count=1, settle=0.5)
    assert len(reports) == 1 and len(unsubs) == 1, (reports, unsubs)
    (report,), (unsub,) = reports, unsubs
    assert (report.account_id, report.recipient, report.email_id) == (sent.account_id, sent.to, sent.email_id)
    assert (unsub.account_id, unsub.recipient, unsub.reason) == (
        sent.account_id,
        sent.to,
        UnsubscribeReason.SPAM_REPORT,
    )
    rows = await db_rows(
        "SELECT reason, message_id FROM suppressions WHERE account_id = $1 AND address = $2", sent.account_id, sent.to
    )
    assert [(r["reason"], str(r["message_id"])) for r in rows] == [("SPAM_REPORT", sent.message_id)]


async def test_an_rfc5965_arf_report_over_http_is_one_spam_report_and_one_unsubscribe(one_sent, api, tracker):
    report = arf_report(one_sent.data, one_sent.to)
    async with engagement_tail() as engagement, unsubscribe_tail() as unsubs:
        # without the feedback-loop secret, or with a wrong one: 401, and no event (counted below)
        for refused in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": basic_auth("fbl", "wrong")}):
            reply = await tracker.post("/mailstream/v1/feedback/arf", content=report, headers=refused)
            assert reply.status_code == 401, reply.text
        reply = await tracker.post(
            "/mailstream/v1/feedback/arf", content=report, headers={"Content-Type": "message/rfc822", **ARF_AUTH}
        )
        assert reply.status_code == 202, reply.text
        assert reply.json()["spamReports"] == 1
        await assert_one_spam_report_and_unsubscribe(one_sent, engagement, unsubs)
        # a re-sent report, with the secret as basic auth's password
        again = await tracker.post(
            "/mailstream/v1/feedback/arf",
            content=report,
            headers={"Authorization": basic_auth("fbl", dev_feedback("FEEDBACK_ARF_SECRET"))},
        )
        assert again.json()["duplicate"] == 1
        reports = await engagement.collect(of(one_sent.message_id, EngagementKind.SPAM_REPORT), count=2, within=2)
        assert len(reports) == 1
    # the contact is marked: the single-send API answers PREVIOUS_SPAM (the gateway reads suppressions)
    assert await send_result_of_another_send(api, one_sent.key, one_sent.email_id, one_sent.to) == "PREVIOUS_SPAM"


async def test_an_arf_report_mailed_to_the_feedback_address_is_taken(one_sent):
    async with engagement_tail() as engagement, unsubscribe_tail() as unsubs:
        await aiosmtplib.send(
            arf_report(one_sent.data, one_sent.to),
            sender="abusedesk@example.com",
            recipients=["fbl@tracker.mailstream.example"],
            hostname=FEEDBACK_SMTP[0],
            port=FEEDBACK_SMTP[1],
        )
        await assert_one_spam_report_and_unsubscribe(one_sent, engagement, unsubs)


async def test_a_mail_that_is_not_a_report_is_refused_by_the_feedback_address():
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await aiosmtplib.send(
            b"From: a@example.com\r\nSubject: hi\r\n\r\nhello\r\n",
            sender="a@example.com",
            recipients=["fbl@tracker.mailstream.example"],
            hostname=FEEDBACK_SMTP[0],
            port=FEEDBACK_SMTP[1],
        )
    assert refused.value.code == 550


async def test_an_ses_complaint_is_one_spam_report_and_one_unsubscribe(one_sent, tracker):
    notification = {
        "notificationType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": one_sent.to}],
            "timestamp": datetime.now(UTC).isoformat(),
            "feedbackId": f"{uuid.uuid4()}-000000",
            "userAgent": "Comcast Feedback Loop (V0.01)",
            "complaintFeedbackType": "abuse",
        },
        "mail": {
            "timestamp": datetime.now(UTC).isoformat(),
            "messageId": f"{uuid.uuid4()}-000000",
            "source": "orders@shop.example",
            "headers": [{"name": "X-Mailstream-ID", "value": one_sent.message_id}],
            "commonHeaders": {"messageId": f"<{one_sent.message_id}@shop.example>"},
        },
    }
    async with SnsSigner() as sns, engagement_tail() as engagement, unsubscribe_tail() as unsubs:
        signed = sns.notification(notification)
        other_topic = SnsSigner(topic_arn="arn:aws:sns:us-east-1:000000000000:someone-else")
        refused = {
            "bare SES JSON": notification,
            "unsigned": {**signed, "Signature": ""},
            "tampered": {**signed, "Message": json.dumps({**notification, "complaint": {}})},
            "another topic": other_topic.notification(notification),
            "a foreign certificate": {**signed, "SigningCertURL": "https://sns.example.com/cert.pem"},
        }
        for case, body in refused.items():
            reply = await tracker.post("/mailstream/v1/feedback/ses", json=body)
            assert reply.status_code == 403, (case, reply.text)
        reply = await tracker.post("/mailstream/v1/feedback/ses", json=signed)
        assert reply.status_code == 202 and reply.json()["spamReports"] == 1, reply.text
        await assert_one_spam_report_and_unsubscribe(one_sent, engagement, unsubs)


async def test_a_report_about_an_unknown_message_publishes_nothing(tracker):
    fake = f"Message-ID: <{uuid.uuid4()}@shop.example>\r\nFrom: a@shop.example\r\n\r\nhi\r\n"
    reply = await tracker.post(
        "/mailstream/v1/feedback/arf", content=arf_report(fake, "x@example.com"), headers=ARF_AUTH
    )
    assert reply.status_code == 202 and reply.json() == {
        "spamReports": 0,
        "notSpam": 0,
        "unknownMessage": 1,
        "duplicate": 0,
    }
    assert (await tracker.post("/mailstream/v1/feedback/arf", content=b"hello", headers=ARF_AUTH)).status_code == 400


async def test_the_unsubscribe_page_and_rfc8058_one_click_suppress_the_contact(one_sent, tracker):
    path = one_sent.link(LinkKind.UNSUBSCRIBE).removeprefix(TRACKER)
    page = await tracker.get(path)
    assert page.status_code == 200 and 'method="post"' in page.text and one_sent.to in page.text
    async with unsubscribe_tail() as unsubs:
        reply = await tracker.post(path, data={"List-Unsubscribe": "One-Click"})
        assert reply.status_code == 200
        (unsub,) = await unsubs.collect(lambda u: u.message_id == one_sent.message_id, count=1, settle=1.0)
    assert (unsub.reason, unsub.recipient) == (UnsubscribeReason.LIST_UNSUBSCRIBE, one_sent.to)
    for _ in range(100):
        rows = await db_fetch("SELECT reason FROM suppressions WHERE address = $1", one_sent.to)
        if rows:
            break
        await asyncio.sleep(0.1)
    assert [r["reason"] for r in rows] == ["UNSUBSCRIBED"]


async def test_the_links_the_renderer_wrote_are_tracked_and_one_click_unsubscribe_stops_marketing(
    api, new_account, sink, unique_address, tracker
):
    key = new_account("renderer-links")
    email_id = await create_email(api, key, "MARKETING", NEWS_HTML)
    sent = await send(api, sink, key, email_id, unique_address())
    msg = email.message_from_string(sent.data, policy=default)
    html = msg.get_body(("html",)).get_content()
    base = re.escape(TRACKER)
    (pixel,) = re.findall(rf"{base}/o/[A-Za-z0-9_.-]+", html)
    (click,) = re.findall(rf"{base}/c/[A-Za-z0-9_.-]+", html)
    unsubscribe = str(msg["List-Unsubscribe"]).strip().strip("<>")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    await asyncio.sleep(link_scanner_pause())  # past the link-scanner window
    async with engagement_tail() as engagement, unsubscribe_tail() as unsubs:
        assert (await tracker.get(pixel.removeprefix(TRACKER), headers={"User-Agent": BROWSER})).status_code == 200
        reply = await tracker.get(click.removeprefix(TRACKER), headers={"User-Agent": BROWSER})
        assert reply.status_code == 302 and reply.headers["Location"] == "https://shop.example/sale"
        reply = await tracker.post(unsubscribe.removeprefix(TRACKER), data={"List-Unsubscribe": "One-Click"})
        assert reply.status_code == 200
        events = await engagement.collect(of(sent.message_id), count=2, settle=1.0)
        (unsub,) = await unsubs.collect(lambda u: u.message_id == sent.message_id, count=1, settle=0.5)
    assert [(e.kind, e.machine, e.email_id) for e in events] == [
        (EngagementKind.OPEN, False, email_id),
        (EngagementKind.CLICK, False, email_id),
    ]
    assert (unsub.reason, unsub.recipient, unsub.account_id) == (
        UnsubscribeReason.LIST_UNSUBSCRIBE,
        sent.to,
        sent.account_id,
    )
    result = None
    for _ in range(50):  # once the tracker has the suppression, later MARKETING sends are refused
        result = await send_result_of_another_send(api, key, email_id, sent.to)
        if result != "SENT":
            break
        await asyncio.sleep(0.2)
    assert result == "PREVIOUSLY_UNSUBSCRIBED_PORTAL"


# --- email.delivery: statuses and bounces -----------------------------------------------------------


async def test_delivery_events_complete_the_status_and_hard_bounces_suppress(one_sent, api, unique_address):
    status = await wait_complete(api, one_sent.key, one_sent.status_id)
    assert status["status"] == "COMPLETE" and status["sendResult"] == "SENT"
    assert status["startedAt"] <= status["completedAt"] and status["eventId"]["id"]

    bounced_to, message_id, status_id = unique_address(), str(uuid.uuid4()), str(uuid.uuid4())
    bounce = DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=message_id,
        status_id=status_id,
        account_id=one_sent.account_id,
        recipient=bounced_to.upper(),
        outcome=DeliveryOutcome.BOUNCED,
        send_result="UNDELIVERABLE",
        occurred_at=datetime.now(UTC),
        started_at=datetime.now(UTC),
        smtp_code=550,
        smtp_reply="5.1.1 no such user",
    )
    producer = AIOKafkaProducer(bootstrap_servers=SETTINGS.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(DELIVERY.name, encode(bounce), key=message_id.encode())
    finally:
        await producer.stop()
    rows = await db_rows("SELECT reason, message_id FROM suppressions WHERE address = $1", bounced_to)
    assert [(r["reason"], str(r["message_id"])) for r in rows] == [("BOUNCED", message_id)]
    (outcome,) = await db_fetch(
        "SELECT status, send_result FROM send_outcomes WHERE status_id = $1", uuid.UUID(status_id)
    )
    assert (outcome["status"], outcome["send_result"]) == ("COMPLETE", "UNDELIVERABLE")
    assert await send_result_of_another_send(api, one_sent.key, one_sent.email_id, bounced_to) == "PREVIOUSLY_BOUNCED"


# --- statistics -------------------------------------------------------------------------------------


async def test_statistics_equal_the_event_counts_after_1000_opens_and_clicks(api, new_account, sink, unique_address):
    key = new_account("stats")
    email_id = await create_email(api, key)
    sents = [await send(api, sink, key, email_id, unique_address()) for _ in range(4)]
    account_id = sents[0].account_id
    await asyncio.sleep(link_scanner_pause())  # past the link-scanner window, so people's clicks count as people's
    token = f"tok-{uuid.uuid4().hex[:8]}"  # as if the messages were submitted over SMTP with this token
    agents = [BROWSER, BROWSER, BROWSER, GMAIL_PROXY, "Mozilla/5.0"]
    rng = random.Random(6)
    requests = []
    for i in range(1000):
        sent = rng.choice(sents)
        kind = LinkKind.OPEN if i % 2 else LinkKind.CLICK
        url = f"https://shop.example/p/{rng.randrange(5)}" if kind is LinkKind.CLICK else None
        method = "HEAD" if kind is LinkKind.OPEN and rng.random() < 0.05 else "GET"
        requests.append((method, sent.link(kind, url, token).removeprefix(TRACKER), rng.choice(agents)))

    async with engagement_tail() as tail:
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=TRACKER, timeout=10, limits=limits) as client:
            gate = asyncio.Semaphore(20)

            async def hit(method, path, agent):
                async with gate:
                    reply = await client.request(method, path, headers={"User-Agent": agent})
                    assert reply.status_code in (200, 302)

            await asyncio.gather(*(hit(*r) for r in requests))
        events = await tail.collect(lambda e: e.account_id == account_id, count=1000, within=60, settle=1.0)
    assert len(events) == 1000

    expected = Counter()
    humans = set()
    for e in events:
        prefix = "opens" if e.kind is EngagementKind.OPEN else "clicks"
        expected[f"{prefix}_total"] += 1
        if e.machine:
            expected[f"{prefix}_machine"] += 1
        elif (e.kind, e.message_id, e.recipient) not in humans:
            humans.add((e.kind, e.message_id, e.recipient))
            expected[f"{prefix}_unique_human"] += 1
    assert 0 < expected["opens_machine"] < expected["opens_total"]
    assert expected["opens_unique_human"] == 4 and expected["clicks_unique_human"] == 4

    names = (
        "opens_total",
        "opens_unique_human",
        "opens_machine",
        "clicks_total",
        "clicks_unique_human",
        "clicks_machine",
    )
    rows = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = {
            (r["dimension"], r["dimension_id"]): r
            for r in await db_fetch("SELECT * FROM stats WHERE account_id = $1", account_id)
        }
        if all(
            k in rows and rows[k]["opens_total"] + rows[k]["clicks_total"] == 1000 and rows[k]["delivered"] == 4
            for k in (("account", str(account_id)), ("email", str(email_id)))
        ):
            break
        await asyncio.sleep(0.5)
    for dimension in (("account", str(account_id)), ("email", str(email_id)), ("token", token)):
        row = rows[dimension]
        assert {n: row[n] for n in names} == {n: expected[n] for n in names}, dimension
    for dimension in (("account", str(account_id)), ("email", str(email_id))):
        assert (rows[dimension]["sent"], rows[dimension]["delivered"], rows[dimension]["bounced"]) == (4, 4, 0)
        assert rows[dimension]["spam_reports"] == 0 and rows[dimension]["unsubscribes"] == 0

    # the same figures through the gateway's API, with the rates
    headers = {"Authorization": f"Bearer {key}"}
    for params in ({}, {"emailId": email_id}):
        view = (await api.get("/mailstream/v1/stats", params=params, headers=headers)).json()
        assert (view["opens"], view["opensUniqueHuman"], view["opensMachine"]) == (
            expected["opens_total"],
            expected["opens_unique_human"],
            expected["opens_machine"],
        ), view
        assert (view["clicks"], view["clicksUniqueHuman"], view["clicksMachine"]) == (
            expected["clicks_total"],
            expected["clicks_unique_human"],
            expected["clicks_machine"],
        ), view
        assert (view["sent"], view["delivered"]) == (4, 4)
        assert view["openRate"] == 1.0 and view["clickRate"] == 1.0  # 4 unique human each / 4 delivered


# --- the CLI ----------------------------------------------------------------------------------------


async def test_events_tail_decodes_the_engagement_topic_as_json(one_sent, tracker):
    proc = await asyncio.create_subprocess_exec(
        MAILSTREAM_CLI,
        "events",
        "tail",
        "--topic",
        ENGAGEMENT.name,
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        found = None
        deadline = time.monotonic() + 30
        opener = one_sent.link(LinkKind.OPEN).removeprefix(TRACKER)
        while found is None and time.monotonic() < deadline:
            await tracker.get(opener, headers={"User-Agent": BROWSER})  # until the tail, now started, sees one
            try:
                while True:
                    line = await asyncio.wait_for(proc.stdout.readline(), timeout=1.0)
                    if one_sent.message_id.encode() in line:
                        found = json.loads(line)
                        break
            except TimeoutError:
                continue
        assert found is not None, "events tail printed no event of ours"
        assert found["topic"] == ENGAGEMENT.name and found["type"] == "EngagementRecorded"
        assert found["key"] == one_sent.message_id
        value = found["value"]
        assert (value["kind"], value["message_id"], value["account_id"]) == (
            "OPEN",
            one_sent.message_id,
            one_sent.account_id,
        )
        assert value["user_agent"] == BROWSER and value["machine"] is False
    finally:
        proc.terminate()
        await proc.wait()
