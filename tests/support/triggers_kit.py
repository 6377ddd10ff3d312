"""What the trigger tests share: a customer topic, order records, a receipt email saved for
automation, a rule, the sink's messages for a domain, a rule's group caught up, dead letters."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import time
import uuid
from collections.abc import Iterable

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from mailstream.schemas import RecordDeadLettered, decode
from mailstream.schemas.topics import DEAD_LETTER
from testkit import common_settings

BOOTSTRAP = common_settings().kafka_bootstrap
RECEIPT_HTML = """<p>Thanks {{ contact.firstname | default('there') }}, here is order {{ custom.order_id }}.</p>
<ul>{% for item in custom.items %}<li>{{ item.sku }} x {{ item.qty }}</li>{% endfor %}</ul>"""


def order(i: int, domain: str, run: str) -> dict:
    return {
        "order_id": f"{run}-{i}",
        "status": "paid",
        "customer": {"email": f"buyer-{i}@{domain}", "first_name": f"Buyer{i}"},
        "items": [{"sku": f"sku-{i}-a", "qty": 1 + i % 3}, {"sku": f"sku-{i}-b", "qty": 1}],
    }


async def create_topic(name: str, partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def delete_topic(name: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        await admin.delete_topics([name])
    except Exception:
        pass
    finally:
        await admin.close()


async def produce(topic: str, values: Iterable[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def json_records(orders: Iterable[dict]) -> list[tuple[bytes, bytes]]:
    return [(o["order_id"].encode(), json.dumps(o).encode()) for o in orders]


async def receipt_email(api: httpx.AsyncClient, headers: dict, *, tracking: bool = False) -> int:
    created = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={
            "name": "Order receipt",
            "subject": "Your order {{ custom.order_id }}",
            "fromName": "Shop",
            "fromEmail": "orders@shop.example",
            "html": RECEIPT_HTML,
            "subscriptionType": "TRANSACTIONAL",
            "tracking": tracking,
        },
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    saved = await api.post(f"/mailstream/v1/emails/{email_id}/save-for-automation", headers=headers)
    assert saved.status_code == 200 and saved.json()["savedForAutomation"], saved.text
    return email_id


def receipt_rule(topic: str, email_id: int, **extra) -> dict:
    return {
        "name": "order receipts",
        "sourceTopic": topic,
        "recordFormat": "JSON",
        "filter": [{"field": "status", "in": ["paid", "shipped"]}],
        "emailId": email_id,
        "recipientField": "customer.email",
        "contactProperties": {"firstname": "customer.first_name"},
        "customProperties": {"order_id": "order_id", "items": "items"},
        "sendIdTemplate": "order-{{ order_id }}",
        **extra,
    }


async def create_rule(api: httpx.AsyncClient, headers: dict, body: dict) -> dict:
    created = await api.post("/mailstream/v1/triggers", headers=headers, json=body)
    assert created.status_code == 201, created.text
    return created.json()


async def messages(sink: httpx.AsyncClient, domain: str, *, bodies: bool = False) -> list[dict]:
    params = {"domain": domain} if bodies else {"domain": domain, "envelope_only": "1"}
    return (await sink.get("/api/messages", params=params)).json()


async def wait_messages(sink: httpx.AsyncClient, domain: str, count: int, within: float) -> list[dict]:
    deadline = time.monotonic() + within
    while True:
        found = await messages(sink, domain)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


def text_of(raw: str) -> str:
    """The decoded text of every text part of a message."""
    msg = email.message_from_string(raw, policy=email.policy.default)
    return "\n".join(part.get_content() for part in msg.walk() if part.get_content_maintype() == "text")


async def committed(group: str, topic: str) -> dict[int, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


async def end_offsets(topic: str, partitions: int = 3) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def wait_caught_up(group: str, topic: str, within: float = 60) -> dict[int, int]:
    """The group's committed offsets once they reach the end of every partition of the topic."""
    ends = await end_offsets(topic)
    deadline = time.monotonic() + within
    while True:
        done = await committed(group, topic)
        if all(done.get(p, 0) >= end for p, end in ends.items() if end) or time.monotonic() > deadline:
            return done
        await asyncio.sleep(0.5)


class DeadLetters:
    """Reads email.dead-letter from its end at start: the dead letters of one rule."""

    def __init__(self) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
        self.found: list[RecordDeadLettered] = []

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(DEAD_LETTER.name, p) for p in range(DEAD_LETTER.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self.consumer.position(tp)

    async def of_rule(self, rule_id: str, count: int, within: float = 30) -> list[RecordDeadLettered]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for records in (await self.consumer.getmany(timeout_ms=500)).values():
                self.found += [decode(r.value, RecordDeadLettered) for r in records]
            mine = [d for d in self.found if d.reason.startswith(f"trigger {rule_id}:")]
            if len(mine) >= count:
                break
        return [d for d in self.found if d.reason.startswith(f"trigger {rule_id}:")]

    async def stop(self) -> None:
        await self.consumer.stop()


def new_run() -> tuple[str, str, str]:
    """(topic, recipient domain, order id prefix) no other run uses."""
    run = uuid.uuid4().hex[:10]
    return f"orders.{run}", f"t{run}.example", run
