"""The thinnest path through all four services, on the real broker, database and SMTP sink."""

import asyncio
import email
import uuid
from email.policy import default

import pytest

pytestmark = pytest.mark.e2e


async def test_single_send_is_merged_delivered_from_the_pool_ip_and_completes(api, new_account, sink, unique_address):
    key = new_account("skeleton")
    headers = {"Authorization": f"Bearer {key}"}
    created = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={
            "name": "Order receipt",
            "subject": "Your order {{ custom.order_id }}",
            "fromName": "Shop",
            "fromEmail": "orders@shop.example",
            "replyTo": ["support@shop.example"],
            "html": "<p>Hi {{ contact.firstname }}, order {{ custom.order_id }} is on its way.</p>",
            "subscriptionType": "TRANSACTIONAL",
        },
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    converted = await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=headers)
    assert converted.json()["singleSendApi"] is True

    to, send_id = unique_address(), f"order-{uuid.uuid4()}"
    reply = await api.post(
        "/marketing/v3/transactional/single-email/send",
        headers=headers,
        json={
            "emailId": email_id,
            "message": {"to": to, "sendId": send_id, "bcc": [f"archive-{to}"]},
            "contactProperties": {"firstname": "Jane"},
            "customProperties": {"order_id": "1001"},
        },
    )
    assert reply.status_code == 200, reply.text
    accepted = reply.json()
    assert accepted["status"] == "PENDING" and accepted["requestedAt"]

    (received,) = await sink.wait_for(to)
    assert received["peer"] == "127.0.0.2"  # the one IP of the shared pool in deploy/policy/pools.toml
    assert received["mail_from"].startswith("b-") and received["mail_from"].endswith("@bounces.shop.example")  # VERP
    assert sorted(received["rcpt_tos"]) == sorted([to, f"archive-{to}"])
    msg = email.message_from_string(received["data"], policy=default)
    assert msg["From"] == "Shop <orders@shop.example>"
    assert msg["To"] == to and msg["Bcc"] is None
    assert msg["Reply-To"] == "support@shop.example"
    assert msg["Subject"] == "Your order 1001"
    assert msg["Message-ID"].endswith("@shop.example>") and msg["Date"]
    assert "Hi Jane, order 1001 is on its way." in msg.get_body(("html",)).get_content()
    assert "Hi Jane, order 1001 is on its way." in msg.get_body(("plain",)).get_content()

    status = None
    for _ in range(100):
        status = (await api.get(f"/marketing/v3/email/send-statuses/{accepted['statusId']}", headers=headers)).json()
        if status["status"] == "COMPLETE":
            break
        await asyncio.sleep(0.1)
    assert status["status"] == "COMPLETE" and status["sendResult"] == "SENT"
    assert status["startedAt"] <= status["completedAt"]
    assert status["eventId"]["id"] and status["eventId"]["created"]
    assert msg["X-Mailstream-ID"] in msg["Message-ID"]
