"""The renderer through the real stack: HTTP in -> Kafka -> renderer -> sender -> SMTP sink / send status.

Rows other services own and that have no public API yet (contact statuses, suppressions) are
inserted as test set-up with random account ids and addresses; nothing shared is cleared.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import html as html_lib
import re
import uuid
from datetime import UTC, datetime, timedelta
from email.policy import default

import asyncpg
import httpx
import pytest

from mailstream.core.settings import LinkSettings
from mailstream.schemas.links import LinkKind, LinkSigner

pytestmark = pytest.mark.e2e

SETTINGS = LinkSettings.from_env()
SIGNER = LinkSigner.from_setting(SETTINGS.link_signing_keys)
TRACKING = SETTINGS.tracking_base_url.rstrip("/")
DATABASE_URL = SETTINGS.database_url

RECEIPT_HTML = """<html><body>
<h1>Danke, {{ contact.firstname|default('Kunde') }}!</h1>
<table>{% for item in custom.items %}<tr><td>{{ item.name }}</td><td>{{ item.qty }}</td></tr>{% endfor %}</table>
<p><a href="https://shop.example/orders/{{ custom.order_id }}?ref=mail&amp;x=1">Your order</a>
<a href="mailto:help@shop.example">Help</a> <a href="#top">Top</a> <a href="tel:+4712345678">Call</a></p>
<p>{{ unsubscribe_link }}</p>
</body></html>"""

NEWSLETTER_HTML = """<html><body><p>News for {{ contact.firstname }}</p>
<a href="https://shop.example/sale">Sale</a> <a href="{{ unsubscribe_link }}">Unsubscribe</a></body></html>"""


@pytest.fixture
async def db():
    conn = await asyncpg.connect(DATABASE_URL)
    yield conn
    await conn.close()


class Account:
    def __init__(self, api, key: str, account_id: int) -> None:
        self.api, self.id = api, account_id
        self.headers = {"Authorization": f"Bearer {key}"}

    async def email(self, **fields) -> int:
        body = {"name": "e2e", "fromName": "Shöp", "fromEmail": "orders@shop.example", **fields}
        created = await self.api.post("/mailstream/v1/emails", headers=self.headers, json=body)
        assert created.status_code == 201, created.text
        email_id = created.json()["emailId"]
        converted = await self.api.post(
            f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=self.headers
        )
        assert converted.status_code == 200, converted.text
        return email_id

    async def send(self, email_id: int, to: str, **fields) -> str:
        body = {"emailId": email_id, "message": {"to": to, "sendId": str(uuid.uuid4())}, **fields}
        reply = await self.api.post("/marketing/v3/transactional/single-email/send", headers=self.headers, json=body)
        assert reply.status_code == 200, reply.text
        return reply.json()["statusId"]

    async def final_status(self, status_id: str, within: float = 30) -> dict:
        status: dict = {}
        for _ in range(int(within / 0.1)):
            reply = await self.api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=self.headers)
            status = reply.json()
            if status.get("status") == "COMPLETE":
                return status
            await asyncio.sleep(0.1)
        return status


@pytest.fixture
async def account(api, new_account, db) -> Account:
    key = new_account("rendering")
    account_id = await db.fetchval(
        "SELECT account_id FROM api_keys WHERE key_hash = $1", hashlib.sha256(key.encode()).digest()
    )
    assert account_id is not None
    return Account(api, key, account_id)


def parse(received: dict):
    return email.message_from_string(received["data"], policy=default)


def tracking_urls(html: str, kind: str) -> list[str]:
    return [html_lib.unescape(u) for u in re.findall(rf'"({re.escape(TRACKING)}/{kind}/[^"]+)"', html)]


def verified(url: str):
    link = SIGNER.verify(url.rsplit("/", 1)[1])
    assert link is not None, f"{url} does not verify"
    return link


async def test_a_transactional_receipt_is_personalized_tracked_and_has_no_unsubscribe(account, sink, unique_address):
    email_id = await account.email(
        subject="Ihre Bestellung {{ custom.order_id }} ✓",
        html=RECEIPT_HTML,
        subscriptionType="TRANSACTIONAL",
    )
    to = unique_address()
    items = [{"name": f"Artikel <{i}> & Co", "qty": i} for i in range(1, 11)]
    status_id = await account.send(
        email_id,
        to,
        contactProperties={"firstname": "Zoë"},
        customProperties={"order_id": "A-17", "items": items},
    )
    (received,) = await sink.wait_for(to)
    assert received["peer"] == "127.0.0.2"
    msg = parse(received)
    assert msg["Subject"] == "Ihre Bestellung A-17 ✓"
    assert msg["From"].addresses[0].display_name == "Shöp"
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    message_id = msg["X-Mailstream-ID"]
    assert msg["Message-ID"] == f"<{message_id}@shop.example>"

    html = msg.get_body(("html",)).get_content()
    assert "Danke, Zoë!" in html and "Artikel &lt;10&gt; &amp; Co" in html  # escaped in HTML
    assert f"{TRACKING}/u/" not in html  # never an unsubscribe link in transactional mail
    (opened,) = tracking_urls(html, "o")
    open_link = verified(opened)
    assert open_link.kind is LinkKind.OPEN
    assert (open_link.message_id, open_link.account_id, open_link.recipient) == (message_id, account.id, to)
    (clicked,) = tracking_urls(html, "c")
    click = verified(clicked)
    assert click.url == "https://shop.example/orders/A-17?ref=mail&x=1" and click.email_id == email_id
    for untouched in ('href="mailto:help@shop.example"', 'href="#top"', 'href="tel:+4712345678"'):
        assert untouched in html
    text = msg.get_body(("plain",)).get_content()
    assert "Artikel <10> & Co" in text and "https://shop.example/orders/A-17?ref=mail&x=1" in text

    status = await account.final_status(status_id)
    assert status["status"] == "COMPLETE" and status["sendResult"] == "SENT"


async def test_a_marketing_email_carries_a_signed_unsubscribe_link_and_rfc8058_headers(account, sink, unique_address):
    email_id = await account.email(subject="News", html=NEWSLETTER_HTML, subscriptionType="MARKETING")
    to = unique_address()
    await account.send(email_id, to, contactProperties={"firstname": "Ola"})
    (received,) = await sink.wait_for(to)
    msg = parse(received)
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = str(msg["List-Unsubscribe"]).strip().strip("<>")
    link = verified(unsubscribe_url)
    assert link.kind is LinkKind.UNSUBSCRIBE and link.recipient == to and link.account_id == account.id
    html = msg.get_body(("html",)).get_content()
    assert f'href="{unsubscribe_url}"' in html  # in the body, not rewritten into a click link
    (click,) = tracking_urls(html, "c")
    # a static link of the email: the link carries its index in the email version's links
    link = verified(click)
    assert (link.url, link.link, link.email_id, link.email_version) == (None, 0, email_id, 1)
    async with httpx.AsyncClient(timeout=10) as client:
        redirect = await client.get(click, headers={"User-Agent": "Mozilla/5.0 (X11; Linux) Firefox/140.0"})
    assert redirect.status_code == 302 and redirect.headers["location"] == "https://shop.example/sale"


async def test_tracking_can_be_switched_off_per_email(account, sink, unique_address):
    email_id = await account.email(
        subject="Plain",
        html='<p><a href="https://shop.example/x">x</a></p>',
        subscriptionType="TRANSACTIONAL",
        tracking=False,
    )
    to = unique_address()
    await account.send(email_id, to)
    (received,) = await sink.wait_for(to)
    html = parse(received).get_body(("html",)).get_content()
    assert TRACKING not in html and 'href="https://shop.example/x"' in html


async def set_contact(account: Account, address: str, **statuses) -> None:
    reply = await account.api.put(f"/mailstream/v1/contacts/{address}", headers=account.headers, json=statuses)
    assert reply.status_code == 200, reply.text


async def suppress(db, account: Account, address: str, reason: str) -> None:
    """A tracker-owned row (no public API writes it directly): test set-up only."""
    await db.execute(
        "INSERT INTO suppressions (account_id, address, reason, detail) VALUES ($1, $2, $3, 'e2e test')",
        account.id,
        address,
        reason,
    )


@pytest.mark.parametrize(
    ("contact", "suppression", "result"),
    [
        ({"subscriptionStatus": "UNSUBSCRIBED"}, None, "PREVIOUSLY_UNSUBSCRIBED_PORTAL"),
        ({"bounced": True}, None, "PREVIOUSLY_BOUNCED"),
        ({"spamReported": True}, None, "PREVIOUS_SPAM"),
        (None, "UNSUBSCRIBED", "PREVIOUSLY_UNSUBSCRIBED_PORTAL"),
        (None, "BOUNCED", "PREVIOUSLY_BOUNCED"),
        (None, "SPAM_REPORT", "PREVIOUS_SPAM"),
    ],
)
async def test_the_renderer_drops_marketing_mail_to_a_contact_blocked_after_the_send_was_accepted(
    account, db, sink, unique_address, contact, suppression, result
):
    """The gateway already refuses blocked contacts at accept time; a scheduled send shows the
    renderer's own check: the status changes after acceptance, before rendering."""
    to = unique_address()
    marketing = await account.email(subject="News", html=NEWSLETTER_HTML, subscriptionType="MARKETING")
    send_at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    status_id = await account.send(marketing, to, sendAt=send_at)
    if contact is not None:
        await set_contact(account, to, **contact)
    if suppression is not None:
        await suppress(db, account, to, suppression)
    status = await account.final_status(status_id)
    assert status["status"] == "COMPLETE" and status["sendResult"] == result
    assert await sink.wait_for(to, within=1) == []


@pytest.mark.parametrize(
    "contact",
    [{"subscriptionStatus": "UNSUBSCRIBED"}, {"quarantined": True}, {"doubleOptIn": "PENDING"}, "suppressed"],
)
async def test_transactional_mail_bypasses_subscription_quarantine_and_double_opt_in(
    account, db, sink, unique_address, contact
):
    to = unique_address()
    if contact == "suppressed":
        await suppress(db, account, to, "UNSUBSCRIBED")
    else:
        await set_contact(account, to, **contact)
    transactional = await account.email(subject="Receipt", html="<p>Receipt</p>", subscriptionType="TRANSACTIONAL")
    status_id = await account.send(transactional, to)
    (received,) = await sink.wait_for(to)
    assert parse(received)["Subject"] == "Receipt" and parse(received)["List-Unsubscribe"] is None
    assert (await account.final_status(status_id))["sendResult"] == "SENT"


async def test_a_missing_custom_property_ends_the_send_without_an_email(account, sink, unique_address):
    email_id = await account.email(
        subject="Order {{ custom.order_id }}", html="<p>x</p>", subscriptionType="TRANSACTIONAL"
    )
    to = unique_address()
    status = await account.final_status(await account.send(email_id, to))
    assert status["status"] == "COMPLETE" and status["sendResult"] == "MISSING_TEMPLATE_PROPERTIES"
    assert await sink.wait_for(to, within=1) == []


async def test_a_sandbox_escape_ends_the_send_with_a_render_exception(account, unique_address):
    email_id = await account.email(
        subject="x", html="{{ ''.__class__.__mro__[1].__subclasses__() }}", subscriptionType="TRANSACTIONAL"
    )
    status = await account.final_status(await account.send(email_id, unique_address()))
    assert status["status"] == "COMPLETE" and status["sendResult"] == "TEMPLATE_RENDER_EXCEPTION"


async def test_an_undecodable_send_request_is_dead_lettered_with_the_reason():
    """Straight onto the topic (the gateway never produces such a record): the renderer dead-letters
    it with the reason and goes on rendering."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from mailstream.core.kafka import reliable_producer
    from mailstream.schemas import RecordDeadLettered, decode
    from mailstream.schemas.topics import DEAD_LETTER, SEND_REQUESTED

    key = f"e2e-garbage-{uuid.uuid4()}".encode()
    consumer = AIOKafkaConsumer(bootstrap_servers=SETTINGS.kafka_bootstrap, enable_auto_commit=False)
    producer = reliable_producer(SETTINGS.kafka_bootstrap, client_id="e2e-rendering")
    await consumer.start()
    await producer.start()
    try:
        partitions = [TopicPartition(DEAD_LETTER.name, p) for p in range(DEAD_LETTER.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_end(*partitions)
        for tp in partitions:
            await consumer.position(tp)
        await producer.send_and_wait(SEND_REQUESTED.name, key=key, value=b"\x00not avro at all")
        found = None
        deadline = asyncio.get_running_loop().time() + 20
        while found is None and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for record in (r for batch in batches.values() for r in batch):
                if record.key == key:
                    found = decode(record.value, RecordDeadLettered)
        assert found is not None, "no dead letter within 20 s"
        assert found.service == "renderer" and found.source_topic == SEND_REQUESTED.name
        assert found.value == b"\x00not avro at all" and "decode" in found.reason
    finally:
        await producer.stop()
        await consumer.stop()


async def test_one_click_unsubscribe_from_the_header_stops_the_next_marketing_email(account, sink, unique_address):
    """RFC 8058 round trip: POST to the List-Unsubscribe URL (as a mailbox provider does), then a
    marketing send released afterwards is dropped by the renderer (the tracker's suppression)."""
    email_id = await account.email(subject="News", html=NEWSLETTER_HTML, subscriptionType="MARKETING")
    to = unique_address()
    await account.send(email_id, to, contactProperties={"firstname": "Kari"})
    (received,) = await sink.wait_for(to)
    unsubscribe_url = str(parse(received)["List-Unsubscribe"]).strip().strip("<>")
    send_at = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    later = await account.send(email_id, to, sendAt=send_at)
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(
            unsubscribe_url,
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert reply.status_code in (200, 202, 204), reply.text
    status = await account.final_status(later, within=30)
    assert status["status"] == "COMPLETE" and status["sendResult"] == "PREVIOUSLY_UNSUBSCRIBED_PORTAL"
    assert len(await sink.wait_for(to, count=2, within=1)) == 1
