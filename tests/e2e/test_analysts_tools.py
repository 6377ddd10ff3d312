"""Analysts read the topics with their own tools (docs/events.md): Confluent's deserializer and kcat
on the topics in Confluent's wire format, and DuckDB on `mailstream events export` files, and
get what the tracker counted in `GET /mailstream/v1/stats`.

The stack `make test` starts writes Confluent's wire format with the local schema registry; a
stack started otherwise (single-object encoding) skips the stock readers' test.
"""

from __future__ import annotations

import asyncio
import email
import os
import re
import smtplib
import ssl
import struct
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import duckdb
import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from mailstream.core.settings import LinkSettings
from mailstream.schemas.topics import DELIVERY, ENGAGEMENT
from testkit import common_settings, link_scanner_pause, single_send_email

pytestmark = pytest.mark.e2e

REGISTRY = os.environ.get("MAILSTREAM_SCHEMA_REGISTRY_URL", "")
TRACKER = LinkSettings.from_env().tracking_base_url
MAILSTREAM_CLI = str(Path(sys.executable).with_name("mailstream"))
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"
DOCS = Path(__file__).resolve().parents[2] / "docs/events.md"
SMTP_PORT = int(os.environ.get("MAILSTREAM_TEST_SMTP_PORT", "2587"))
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE  # the development server's certificate is self-signed
HTML = '<p>Your order.</p><p><a href="https://shop.example/orders">See it</a></p>'


def documented_query() -> str:
    """The DuckDB query docs/events.md gives, as written there."""
    text = DOCS.read_text()
    return re.search(r"With DuckDB.*?```sql\n(.*?)```", text, re.S).group(1)


async def engage(api, sink, headers, email_id: int, recipients: list[str], opens: int, clicks: int) -> list[str]:
    """Sends to every recipient; the first `opens` open the mail, the first `clicks` of them also
    click its link, as a person in a browser. Returns the message ids."""
    for to in recipients:
        reply = await api.post(
            "/marketing/v3/transactional/single-email/send",
            headers=headers,
            json={"emailId": email_id, "message": {"to": to, "sendId": str(uuid.uuid4())}},
        )
        assert reply.status_code == 200, reply.text
    return await click_and_open(sink, recipients, opens, clicks)


async def click_and_open(sink, recipients: list[str], opens: int, clicks: int) -> list[str]:
    mails = []
    for to in recipients:
        (received,) = await sink.wait_for(to, within=90)
        mails.append(email.message_from_string(received["data"], policy=default))
    await asyncio.sleep(link_scanner_pause())  # clicks right after delivery count as a link scanner's
    base = re.escape(TRACKER)
    async with httpx.AsyncClient(base_url=TRACKER, headers={"User-Agent": BROWSER}) as tracker:
        for n, mail in enumerate(mails[:opens]):
            html = mail.get_body(("html",)).get_content()
            (pixel,) = re.findall(rf"{base}/o/[A-Za-z0-9_.-]+", html)
            assert (await tracker.get(pixel.removeprefix(TRACKER))).status_code == 200
            if n < clicks:
                (link,) = re.findall(rf"{base}/c/[A-Za-z0-9_.-]+", html)
                assert (await tracker.get(link.removeprefix(TRACKER))).status_code == 302
    return [str(m["X-Mailstream-ID"]) for m in mails]


async def counted(api, headers, of: dict, opens: int, clicks: int) -> dict:
    """The statistics of an email or token (`of`: the query) once the tracker counted the opens and clicks."""
    deadline = time.monotonic() + 60
    while True:
        stats = (await api.get("/mailstream/v1/stats", headers=headers, params=of)).json()
        if stats["opensUniqueHuman"] >= opens and stats["clicksUniqueHuman"] >= clicks:
            return stats
        assert time.monotonic() < deadline, f"the tracker never counted {opens} opens and {clicks} clicks: {stats}"
        await asyncio.sleep(0.5)


def confluent_read(topic: str, keys: set[str], since: datetime) -> list[dict]:
    """The values of `topic`'s records with these keys since a time, with confluent-kafka's
    consumer and AvroDeserializer, as a Spark or Flink job would read them."""
    consumer = Consumer(
        {
            "bootstrap.servers": common_settings().kafka_bootstrap,
            "group.id": f"analyst-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": REGISTRY}))
    context = SerializationContext(topic, MessageField.VALUE)
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, p, int(since.timestamp() * 1000)) for p in partitions], timeout=10
        )
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        todo = {tp.partition for tp in starts if 0 <= tp.offset < ends[tp.partition]}
        consumer.assign([tp for tp in starts if tp.partition in todo])
        values = []
        deadline = time.monotonic() + 60
        while todo and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            if msg.key() and msg.key().decode() in keys:
                values.append(deserialize(msg.value(), context))
            if msg.offset() >= ends[msg.partition()] - 1:
                todo.discard(msg.partition())
        assert not todo, f"{topic}: partitions {todo} not read to their end"
        return values
    finally:
        consumer.close()


def kcat_read(topic: str, since: datetime) -> list[bytes]:
    """The values of `topic`'s records since a time, as kcat prints them: each one framed by its
    length (kcat's %R) so binary Avro survives the pipe."""
    out = subprocess.run(
        [
            "kcat",
            "-C",
            "-b",
            common_settings().kafka_bootstrap,
            "-t",
            topic,
            "-o",
            f"s@{int(since.timestamp() * 1000)}",
            "-e",
            "-q",
            "-f",
            "%R%s",
        ],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    values, at = [], 0
    while at < len(out):
        (size,) = struct.unpack(">i", out[at : at + 4])
        values.append(out[at + 4 : at + 4 + size])
        at += 4 + max(size, 0)
    return values


def export(topic: str, since: datetime, out: Path) -> None:
    command = [MAILSTREAM_CLI, "events", "export", "--topic", topic, "--since", since.isoformat()]
    subprocess.run([*command, "--format", "parquet", "--out", str(out)], check=True, timeout=120, capture_output=True)


@pytest.mark.skipif(not REGISTRY, reason="the stack writes single-object encoding (make test runs it with a registry)")
async def test_stock_readers_get_the_events_the_tracker_counted(api, sink, new_account, unique_address):
    key = new_account("analysts")
    headers = {"Authorization": f"Bearer {key}"}
    since = datetime.now(UTC) - timedelta(seconds=2)
    email_id = await single_send_email(api, key, html=HTML)
    message_ids = await engage(api, sink, headers, email_id, [unique_address() for _ in range(3)], opens=2, clicks=1)
    stats = await counted(api, headers, {"emailId": email_id}, opens=2, clicks=1)
    keys = set(message_ids)

    engagement = await asyncio.to_thread(confluent_read, ENGAGEMENT.name, keys, since)
    kinds = Counter(e["kind"] for e in engagement if not e["machine"])
    assert kinds == {"OPEN": stats["opensUniqueHuman"], "CLICK": stats["clicksUniqueHuman"]} == {"OPEN": 2, "CLICK": 1}
    delivery = await asyncio.to_thread(confluent_read, DELIVERY.name, keys, since)
    delivered = {d["message_id"] for d in delivery if d["outcome"] == "DELIVERED"}
    assert delivered == keys and stats["delivered"] == 3
    assert {e["email_id"] for e in engagement + delivery} == {email_id}

    # kcat reads the same records: each value is Confluent's frame (magic 0, the schema id) and Avro
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": REGISTRY}))
    for topic, expected in ((ENGAGEMENT.name, engagement), (DELIVERY.name, delivery)):
        context = SerializationContext(topic, MessageField.VALUE)
        framed = [v for v in await asyncio.to_thread(kcat_read, topic, since) if v[:1] == b"\x00"]
        ours = [e for e in (deserialize(v, context) for v in framed) if e["message_id"] in keys]
        assert sorted(e["event_id"] for e in ours) == sorted(e["event_id"] for e in expected), topic


async def test_the_documented_duckdb_query_on_exports_matches_the_stats_per_email_and_per_smtp_token(
    api, sink, new_account, unique_address, tmp_path, monkeypatch
):
    key = new_account("duckdb")
    headers = {"Authorization": f"Bearer {key}"}
    since = datetime.now(UTC) - timedelta(seconds=2)
    email_id = await single_send_email(api, key, html=HTML)
    await engage(api, sink, headers, email_id, [unique_address() for _ in range(4)], opens=3, clicks=2)
    token_id = await submit_over_smtp(api, sink, headers, [unique_address() for _ in range(3)], opens=2, clicks=1)
    by_email = await counted(api, headers, {"emailId": email_id}, opens=3, clicks=2)
    by_token = await counted(api, headers, {"tokenId": token_id}, opens=2, clicks=1)
    for topic, name in ((DELIVERY.name, "delivery.parquet"), (ENGAGEMENT.name, "engagement.parquet")):
        await asyncio.to_thread(export, topic, since, tmp_path / name)
    monkeypatch.chdir(tmp_path)  # the query names the files as the docs' example does
    per_email = {r[0]: r[1:] for r in duckdb.sql(documented_query()).fetchall()}
    # "per SMTP token, group by smtp_token_id instead of email_id", as the docs say
    per_token = {r[0]: r[1:] for r in duckdb.sql(documented_query().replace("email_id", "smtp_token_id")).fetchall()}
    for row, stats in ((per_email[email_id], by_email), (per_token[token_id], by_token)):
        assert row == (stats["delivered"], round(stats["openRate"], 4), round(stats["clickRate"], 4))
    assert per_email[email_id] == (4, 0.75, 0.5) and per_token[token_id] == (3, 0.6667, 0.3333)


async def submit_over_smtp(api, sink, headers, recipients: list[str], opens: int, clicks: int) -> str:
    """One message to these recipients through a new SMTP token; the first `opens` open it, the
    first `clicks` of them click its link. Returns the token's id."""
    created = await api.post(
        "/marketing/v3/transactional/smtp-tokens",
        headers=headers,
        json={"createContact": False, "campaignName": "Receipts"},
    )
    assert created.status_code == 201, created.text
    token = created.json()
    domain = f"shop-{uuid.uuid4().hex[:10]}.example"
    added = await api.post("/mailstream/v1/sending-domains", headers=headers, json={"domain": domain})
    assert added.status_code == 201, added.text
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"orders@{domain}", ", ".join(recipients), "Your order"
    msg.set_content("Your order: https://shop.example/orders")
    msg.add_alternative(HTML, "html")

    def submit() -> None:
        with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30) as smtp:
            smtp.starttls(context=TLS)
            smtp.login(token["id"], token["password"])
            smtp.send_message(msg)

    await asyncio.to_thread(submit)
    await click_and_open(sink, recipients, opens, clicks)
    return token["id"]
