"""SendGrid's v3 Mail Send through the running stack, driven by SendGrid's official Python
library pointed at the gateway: a dynamic template with 3 personalizations, an attachment and
custom_args (3 messages at the sink, every delivery event with the custom_args), 1,000
personalizations in one request, auth (401/403), 413, sandbox mode and the idempotency key."""

from __future__ import annotations

import asyncio
import base64
import email
import os
import subprocess
import sys
import uuid
from email.policy import default
from pathlib import Path

import httpx
import pytest
from kafka_tail import Tail

from mailstream.schemas import DeliveryAttempted, DeliveryOutcome
from mailstream.schemas.topics import DELIVERY
from testkit import db_fetch, single_send_email

pytestmark = pytest.mark.e2e
GATEWAY = os.environ.get("MAILSTREAM_TEST_GATEWAY_URL", "http://127.0.0.1:8080")
CLI = str(Path(sys.executable).with_name("mailstream"))
SEND = "/v3/mail/send"
PDF = b"%PDF-1.4\n% a receipt\n"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def domain() -> str:
    return f"sg-{uuid.uuid4().hex[:10]}.example.com"


def content_body(recipients: list[str], **extra) -> dict:
    body = {
        "personalizations": [{"to": [{"email": r}]} for r in recipients],
        "from": {"email": "orders@shop.example", "name": "Shop"},
        "subject": "Your receipt",
        "content": [{"type": "text/plain", "value": "Thanks!"}, {"type": "text/html", "value": "<p>Thanks!</p>"}],
    }
    body.update(extra)
    return body


async def delivered_to(sink, dom: str, count: int, within: float = 30) -> list[dict]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = (await sink.client.get("/api/messages", params={"domain": dom})).json()
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


@pytest.fixture
async def template(api, new_account) -> tuple[str, int]:
    """A new account's key and a TRANSACTIONAL email converted to the single-send API."""
    key = new_account("sendgrid")
    email_id = await single_send_email(
        api,
        key,
        subject="Order {{order_id}} for {{ first_name }}",
        html='<p>Hi {{first_name}}, order {{order_id}}.</p><a href="https://shop.example/o">see</a>',
    )
    return key, email_id


async def test_the_official_library_sends_a_dynamic_template_to_3_personalizations(template, sink):
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import (
        Attachment,
        CustomArg,
        Disposition,
        FileContent,
        FileName,
        FileType,
        From,
        Mail,
        Personalization,
        To,
    )

    key, email_id = template
    dom = domain()
    recipients = [f"buyer{i}@{dom}" for i in range(3)]
    message = Mail(from_email=From("orders@shop.example", "Shop"))
    message.template_id = f"d-{email_id}"
    for i, rcpt in enumerate(recipients):
        p = Personalization()
        p.add_to(To(rcpt))
        p.dynamic_template_data = {"first_name": f"Buyer {i}", "order_id": f"100{i}"}
        message.add_personalization(p)
    message.attachment = Attachment(
        FileContent(base64.b64encode(PDF).decode()),
        FileName("receipt.pdf"),
        FileType("application/pdf"),
        Disposition("attachment"),
    )
    message.custom_arg = [CustomArg("order_batch", "b-17"), CustomArg("shop", "eu")]
    client = SendGridAPIClient(api_key=key, host=GATEWAY)
    async with Tail(DELIVERY, record_type=DeliveryAttempted) as tail:
        response = await asyncio.to_thread(client.send, message)
        assert response.status_code == 202
        assert response.headers["X-Message-Id"]
        events = await tail.collect(
            lambda e: e.recipient in recipients and e.outcome is DeliveryOutcome.DELIVERED, count=3
        )
    got = await delivered_to(sink, dom, 3)
    assert sorted(r for m in got for r in m["rcpt_tos"]) == recipients
    for m in got:
        msg = email.message_from_bytes(m["data"].encode(), policy=default)
        i = recipients.index(m["rcpt_tos"][0])
        assert msg["Subject"] == f"Order 100{i} for Buyer {i}"
        assert f"Hi Buyer {i}, order 100{i}." in msg.get_body(("html",)).get_content()
        (attachment,) = list(msg.iter_attachments())
        assert attachment.get_filename() == "receipt.pdf" and attachment.get_content() == PDF
    assert len(events) == 3
    assert all(e.custom_args == {"order_batch": "b-17", "shop": "eu"} for e in events)


async def test_1000_personalizations_in_one_request_are_accepted_and_delivered(template, api, sink):
    key, _ = template
    dom = domain()
    recipients = [f"r{i}@{dom}" for i in range(1000)]
    answer = await api.post(SEND, headers=auth(key), json=content_body(recipients), timeout=60)
    assert answer.status_code == 202, answer.text
    rows = await db_fetch(
        "SELECT count(*) AS n FROM send_requests WHERE send_id LIKE $1", answer.headers["X-Message-Id"] + ".%"
    )
    assert rows[0]["n"] == 1000  # every recipient's row, before the 202
    got = await delivered_to(sink, dom, 1000, within=90)
    assert len({r for m in got for r in m["rcpt_tos"]}) == 1000


async def test_each_recipient_of_a_personalization_is_its_own_send(template, api, sink):
    """to, cc and bcc get the personalization's one message, each as its own send: the suppressed
    one is refused alone, and every other one has its own delivery with the categories."""
    key, _ = template
    dom = domain()
    a, blocked, c, d = (f"{x}@{dom}" for x in ("a", "blocked", "c", "d"))
    added = await api.post("/mailstream/v1/suppressions", headers=auth(key), json={"email": blocked})
    assert added.status_code == 202, added.text
    for _ in range(100):  # the tracker applies it moments after the 202
        if (await api.get(f"/mailstream/v1/suppressions/{blocked}", headers=auth(key))).status_code == 200:
            break
        await asyncio.sleep(0.2)
    body = content_body([], categories=["receipt", "eu"], custom_args={"order": "7"})
    body["personalizations"] = [{"to": [{"email": a}, {"email": blocked}], "cc": [{"email": c}],
                                 "bcc": [{"email": d}]}]  # fmt: skip
    async with Tail(DELIVERY, record_type=DeliveryAttempted) as tail:
        answer = await api.post(SEND, headers=auth(key), json=body)
        assert answer.status_code == 202, answer.text
        delivered = DeliveryOutcome.DELIVERED
        events = await tail.collect(lambda e: e.recipient.endswith(dom) and e.outcome is delivered, count=3)
    assert sorted(e.recipient for e in events) == [a, c, d]
    assert all(e.categories == ("receipt", "eu") and e.custom_args == {"order": "7"} for e in events)
    assert len({e.message_id for e in events}) == 3
    got = await delivered_to(sink, dom, 3)
    assert sorted(tuple(m["rcpt_tos"]) for m in got) == [(a,), (c,), (d,)]
    for m in got:
        msg = email.message_from_bytes(m["data"].encode(), policy=default)
        assert (msg["To"], msg["Cc"], msg["Bcc"]) == (f"{a}, {blocked}", c, None)
        assert not [h for h in msg.keys() if h.lower().startswith("x-mailstream-categories")]
    rows = await db_fetch(
        "SELECT send_id, send_result FROM send_requests WHERE send_id LIKE $1 ORDER BY send_id",
        answer.headers["X-Message-Id"] + ".%",
    )
    x = answer.headers["X-Message-Id"]
    assert [(r["send_id"], r["send_result"]) for r in rows] == [
        (f"{x}.0.0", None), (f"{x}.0.1", "BLOCKED_ADDRESS"), (f"{x}.0.2", None), (f"{x}.0.3", None)
    ]  # fmt: skip


async def test_auth_errors_are_401_and_403_in_sendgrid_shape(api, stack):
    body = content_body([f"a@{domain()}"])
    for headers in ({}, auth("not-a-key"), {"Authorization": "Basic abc"}):
        answer = await api.post(SEND, headers=headers, json=body)
        assert answer.status_code == 401, answer.text
        assert answer.json() == {
            "errors": [{"message": "The provided authorization grant is invalid, expired, or revoked", "field": None,
                        "help": None}]
        }  # fmt: skip
    tokens_only = await asyncio.to_thread(
        subprocess.run,
        [CLI, "accounts", "create", f"sg-scopes-{uuid.uuid4().hex[:6]}", "--scopes", "tokens"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = await api.post(SEND, headers=auth(tokens_only.stdout.strip()), json=body)
    assert answer.status_code == 403 and answer.json()["errors"][0]["message"] == "access forbidden"


async def test_an_unsupported_field_and_an_oversize_body_are_refused(api, template):
    key, _ = template
    answer = await api.post(SEND, headers=auth(key), json=content_body([f"a@{domain()}"], ip_pool_name="p1"))
    assert answer.status_code == 400
    assert [e["field"] for e in answer.json()["errors"]] == ["ip_pool_name"]
    big = content_body([f"a@{domain()}"])
    big["content"][0]["value"] = "x" * (31 * 1024 * 1024)
    answer = await api.post(SEND, headers=auth(key), json=big, timeout=60)
    assert answer.status_code == 413
    assert "too large" in answer.json()["errors"][0]["message"]


async def test_sandbox_mode_validates_and_sends_nothing(api, template, sink):
    key, _ = template
    dom = domain()
    body = content_body([f"a@{dom}"], mail_settings={"sandbox_mode": {"enable": True}})
    answer = await api.post(SEND, headers=auth(key), json=body)
    assert answer.status_code == 200 and answer.content == b""
    assert "X-Message-Id" not in answer.headers
    body["personalizations"][0]["to"][0]["email"] = "not an address"
    invalid = await api.post(SEND, headers=auth(key), json=body)
    assert invalid.status_code == 400 and invalid.json()["errors"][0]["field"] == "personalizations[0].to[0].email"
    rows = await db_fetch("SELECT count(*) AS n FROM send_requests WHERE recipient LIKE $1", f"%@{dom}")
    assert rows[0]["n"] == 0 and await delivered_to(sink, dom, 1, within=1.5) == []


async def test_the_same_idempotency_key_sends_once(api, template, sink):
    key, _ = template
    dom = domain()
    headers = {**auth(key), "Idempotency-Key": f"order-{uuid.uuid4()}"}
    body = content_body([f"a@{dom}", f"b@{dom}"])
    first = await api.post(SEND, headers=headers, json=body)
    again = await api.post(SEND, headers=headers, json=body)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.headers["X-Message-Id"] == again.headers["X-Message-Id"]
    await delivered_to(sink, dom, 2)
    await asyncio.sleep(1.0)  # a second send would have arrived by now
    assert len(await delivered_to(sink, dom, 3, within=0)) == 2


def test_the_route_is_in_openapi(stack):
    paths = httpx.get(f"{GATEWAY}/openapi.json", timeout=10).json()["paths"]
    assert "post" in paths[SEND] and "413" in paths[SEND]["post"]["responses"]
