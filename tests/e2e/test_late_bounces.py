"""Late bounces through the real stack: a message goes out with its signed VERP return path as
envelope sender; a DSN (RFC 3464) mailed to that return path at the tracker's inbound SMTP port
ends the send bounced with the class of the sender's bounce table and suppresses the address,
and the statistics move the message from delivered to bounced. An out-of-office reply to the same
return path changes nothing; a forged return path is refused with 550.
"""

from __future__ import annotations

import asyncio
import email
import smtplib
import time
import uuid
from email.policy import default

import httpx
import pytest

from mailstream.core.settings import LinkSettings
from mailstream.schemas.return_paths import ReturnPaths
from testkit import db_fetch, db_rows, single_send_email

pytestmark = pytest.mark.e2e

SETTINGS = LinkSettings.from_env()
RETURN_PATHS = ReturnPaths.from_setting(SETTINGS.link_signing_keys)
INBOUND_SMTP = ("127.0.0.1", 2591)  # TrackerSettings.feedback_smtp_port's default: reports and DSNs
TRACKER_METRICS = f"{SETTINGS.tracking_base_url}/metrics"


async def send(api, key: str, email_id: int, to: str) -> dict:
    reply = await api.post(
        "/marketing/v3/transactional/single-email/send",
        headers={"Authorization": f"Bearer {key}"},
        json={"emailId": email_id, "message": {"to": to, "sendId": str(uuid.uuid4())}},
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


async def status_of(api, key: str, status_id: str, until, within: float = 30) -> dict:
    deadline = time.monotonic() + within
    while True:
        reply = await api.get(
            f"/marketing/v3/email/send-statuses/{status_id}", headers={"Authorization": f"Bearer {key}"}
        )
        status = reply.json()
        if until(status) or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.1)


async def email_stats(api, key: str, email_id: int, until, within: float = 30) -> dict:
    deadline = time.monotonic() + within
    while True:
        reply = await api.get(
            "/mailstream/v1/stats", params={"emailId": email_id}, headers={"Authorization": f"Bearer {key}"}
        )
        view = reply.json()
        if until(view) or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.2)


async def dropped_mail_to_return_paths() -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(TRACKER_METRICS)).text
    for line in text.splitlines():
        if line.startswith('mailstream_tracker_late_bounces_total{outcome="dropped"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _mail(rcpt: str, message: bytes, sender: str) -> None:
    with smtplib.SMTP(*INBOUND_SMTP, timeout=15) as smtp:
        smtp.sendmail(sender, [rcpt], message)


async def mail(rcpt: str, message: bytes, sender: str = "") -> None:
    """Mails `message` to the tracker's inbound SMTP port, as a receiving MTA mails a DSN (null sender)."""
    await asyncio.to_thread(_mail, rcpt, message, sender)


def rfc3464_dsn(return_path: str, recipient: str, message_id: str) -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n"
        f"To: {return_path}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="dsn-boundary"\r\n'
        "\r\n"
        "--dsn-boundary\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
        f"Your message could not be delivered to <{recipient}>: the mailbox does not exist.\r\n"
        "--dsn-boundary\r\n"
        "Content-Type: message/delivery-status\r\n"
        "\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n"
        "Arrival-Date: Thu, 3 Dec 2026 12:00:00 +0000\r\n"
        "\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        "Action: failed\r\n"
        "Status: 5.1.1\r\n"
        "Remote-MTA: dns; mailstore.example.com\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected: User unknown\r\n"
        "\r\n"
        "--dsn-boundary\r\n"
        "Content-Type: text/rfc822-headers\r\n"
        "\r\n"
        f"X-Mailstream-ID: {message_id}\r\n"
        f"To: {recipient}\r\n"
        "Subject: Your order\r\n"
        "\r\n"
        "--dsn-boundary--\r\n"
    ).encode()


def out_of_office(return_path: str, recipient: str) -> bytes:
    return (
        f"From: {recipient}\r\nTo: {return_path}\r\nSubject: Out of office: Your order\r\n"
        "Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\nContent-Type: text/plain\r\n\r\n"
        "I am out of the office until Monday.\r\n"
    ).encode()


async def test_a_dsn_to_the_return_path_of_a_delivered_message_bounces_it_and_suppresses_the_address(
    api, sink, new_account, unique_address
):
    key = new_account("late-bounces")
    email_id = await single_send_email(api, key, html="<p>Your order ships today.</p>")
    to = unique_address()
    accepted = await send(api, key, email_id, to)
    (received,) = await sink.wait_for(to, within=60)
    message_id = email.message_from_string(received["data"], policy=default)["X-Mailstream-ID"]
    return_path = received["mail_from"]
    assert return_path.endswith("@bounces.shop.example") and return_path.startswith("b-")
    assert RETURN_PATHS.message_id(return_path) == message_id
    assert email.message_from_string(received["data"], policy=default)["From"] == "Shop <orders@shop.example>"

    delivered = await status_of(api, key, accepted["statusId"], lambda s: s.get("status") == "COMPLETE")
    assert delivered["sendResult"] == "SENT"
    stats = await email_stats(api, key, email_id, lambda v: v["delivered"] == 1)
    assert (stats["sent"], stats["delivered"], stats["bounced"]) == (1, 1, 0)

    # an out-of-office reply to the return path: taken (250), dropped, nothing changes
    dropped_before = await dropped_mail_to_return_paths()
    await mail(return_path, out_of_office(return_path, to), sender=to)
    assert await dropped_mail_to_return_paths() == dropped_before + 1  # dropped before the 250 was answered
    # a forged return path (one character of the MAC changed): refused at RCPT
    forged = return_path[:30] + ("a" if return_path[30] != "a" else "b") + return_path[31:]
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        await mail(forged, rfc3464_dsn(forged, to, message_id))
    assert refused.value.recipients[forged][0] == 550
    await asyncio.sleep(1)  # what an accepted auto-reply could have caused would show by now
    assert (await status_of(api, key, accepted["statusId"], lambda s: True))["sendResult"] == "SENT"
    assert await db_fetch("SELECT 1 FROM suppressions WHERE address = $1", to) == []

    # the DSN: the send ends bounced with the class, the address is suppressed
    await mail(return_path.upper(), rfc3464_dsn(return_path, to, message_id))  # a relay may change the case
    bounced = await status_of(api, key, accepted["statusId"], lambda s: s.get("sendResult") != "SENT")
    assert (bounced["status"], bounced["sendResult"]) == ("COMPLETE", "UNDELIVERABLE")
    (outcome,) = await db_fetch(
        "SELECT send_result, bounce_class FROM send_outcome_statuses WHERE status_id = $1",
        uuid.UUID(accepted["statusId"]),
    )
    assert (outcome["send_result"], outcome["bounce_class"]) == ("UNDELIVERABLE", "hard:InvalidRecipient")
    rows = await db_rows("SELECT reason, message_id, detail FROM suppressions WHERE address = $1", to)
    assert [(r["reason"], str(r["message_id"])) for r in rows] == [("BOUNCED", message_id)]
    assert "hard:InvalidRecipient" in rows[0]["detail"]

    # counted once, as its final outcome: bounced, no longer delivered
    stats = await email_stats(api, key, email_id, lambda v: v["bounced"] == 1)
    assert (stats["sent"], stats["delivered"], stats["bounced"]) == (1, 0, 1)

    # the same DSN again changes nothing
    await mail(return_path, rfc3464_dsn(return_path, to, message_id))
    await asyncio.sleep(1)
    stats = await email_stats(api, key, email_id, lambda v: True)
    assert (stats["sent"], stats["delivered"], stats["bounced"]) == (1, 0, 1)

    # a next send to the address is dropped, as HubSpot drops mail to a hard-bounced address
    again = await send(api, key, email_id, to)
    if again.get("status") != "COMPLETE":
        again = await status_of(api, key, again["statusId"], lambda s: s.get("status") == "COMPLETE")
    assert again["sendResult"] == "PREVIOUSLY_BOUNCED"
    assert len(await sink.wait_for(to, count=2, within=2)) == 1
