"""Opens and clicks of /v3/mail/send messages on email.engagement carry the send's custom_args and
categories (issue 22): the renderer signs such a message's tracking links as annotated, the
tracker keeps the custom_args and categories with the message (tracked_messages) and looks them
up for the events of annotated links only. A message without them gets events without them."""

from __future__ import annotations

import asyncio
import email
import re
import uuid
from email.policy import default

import httpx
import pytest
from kafka_tail import Tail

from mailstream.core.settings import LinkSettings
from mailstream.schemas import EngagementKind, EngagementRecorded
from mailstream.schemas.links import read_payload
from mailstream.schemas.topics import ENGAGEMENT
from testkit import db_rows

pytestmark = pytest.mark.e2e
TRACKER = LinkSettings.from_env().tracking_base_url
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
HTML = '<p>Thanks for your order.</p><a href="https://shop.example/orders/42">See it</a>'


def mail_send(to: str, **extra) -> dict:
    return {
        "personalizations": [{"to": [{"email": to}]}],
        "from": {"email": "orders@shop.example", "name": "Shop"},
        "subject": "Your receipt",
        "content": [{"type": "text/plain", "value": "Thanks!"}, {"type": "text/html", "value": HTML}],
        **extra,
    }


async def delivered(api, sink, key: str, body: dict) -> tuple[str, str, str]:
    """Sends the request (one recipient); the delivered message's id, open pixel and click link,
    once the tracker has the message (its email.rendered.meta record consumed)."""
    to = body["personalizations"][0]["to"][0]["email"]
    answer = await api.post("/v3/mail/send", headers={"Authorization": f"Bearer {key}"}, json=body)
    assert answer.status_code == 202, answer.text
    (received,) = await sink.wait_for(to, within=30)
    msg = email.message_from_string(received["data"], policy=default)
    html = msg.get_body(("html",)).get_content()
    base = re.escape(TRACKER)
    (pixel,) = re.findall(rf"{base}/o/[A-Za-z0-9_.-]+", html)
    (click,) = re.findall(rf"{base}/c/[A-Za-z0-9_.-]+", html)
    message_id = str(msg["X-Mailstream-ID"])
    query = "SELECT 1 FROM tracked_messages WHERE message_id = $1"
    assert await db_rows(query, uuid.UUID(message_id), within=20), f"the tracker never recorded {message_id}"
    return message_id, pixel, click


def annotated(link: str) -> bool:
    return read_payload(link.rsplit("/", 1)[1].split(".")[0]).annotated


async def test_opens_and_clicks_carry_the_sends_custom_args_and_categories(api, new_account, sink, unique_address):
    key = new_account("sendgrid-tracking")
    with_both = mail_send(unique_address(), custom_args={"order": "42"}, categories=["receipt"])
    (tagged, tagged_pixel, tagged_click), (plain, plain_pixel, plain_click) = await asyncio.gather(
        delivered(api, sink, key, with_both), delivered(api, sink, key, mail_send(unique_address()))
    )
    assert annotated(tagged_pixel) and annotated(tagged_click)
    assert not annotated(plain_pixel) and not annotated(plain_click)
    async with Tail(ENGAGEMENT, record_type=EngagementRecorded) as tail:
        async with httpx.AsyncClient(headers={"User-Agent": BROWSER}, timeout=10) as tracker:
            for pixel, click in ((tagged_pixel, tagged_click), (plain_pixel, plain_click)):
                assert (await tracker.get(pixel)).status_code == 200
                reply = await tracker.get(click)
                assert (reply.status_code, reply.headers["Location"]) == (302, "https://shop.example/orders/42")
        events = await tail.collect(lambda e: e.message_id in (tagged, plain), count=4)
    got = sorted(((e.message_id == tagged, e.kind.value, e.custom_args, e.categories) for e in events), key=str)
    assert got == [
        (False, EngagementKind.CLICK.value, {}, ()),
        (False, EngagementKind.OPEN.value, {}, ()),
        (True, EngagementKind.CLICK.value, {"order": "42"}, ("receipt",)),
        (True, EngagementKind.OPEN.value, {"order": "42"}, ("receipt",)),
    ]
