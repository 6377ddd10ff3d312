"""Tracker CPU per message on its Kafka side: email.rendered (30 KB MIME) + email.delivery.

    .mailstream/venv/bin/python bench/tracker/pipeline.py [N] [RATE]

Publishes N synthetic rendered records and N DELIVERED records (one per message, at RATE messages/s)
for a fresh bench account, waits until the running tracker has written every message COMPLETE and
tracked, and prints the tracker's CPU time (user+system, from /proc) per message. Other traffic on
the shared stack is counted in the CPU too, so run it when the stack is quiet, and compare runs of
the same N and RATE. Deletes the bench account's tracker rows afterwards.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from mailstream.core.settings import CommonSettings
from mailstream.schemas import DeliveryAttempted, DeliveryOutcome, EmailRendered, SubscriptionType, encode
from mailstream.schemas.topics import DELIVERY, RENDERED

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = CommonSettings.from_env()
MIME = b"Subject: bench\r\n\r\n" + b"x" * 30_000


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def records(account_id: int, i: int) -> tuple[EmailRendered, DeliveryAttempted]:
    now = datetime.now(UTC)
    message_id, status_id = str(uuid.uuid4()), str(uuid.uuid4())
    rendered = EmailRendered(
        message_id=message_id,
        status_id=status_id,
        account_id=account_id,
        subscription_type=SubscriptionType.TRANSACTIONAL,
        mail_from="bench@bench.example",
        recipients=(f"r{i}@bench.example",),
        pool="default",
        sending_ip=f"10.0.0.{i % 8}",
        sending_domain="bench.example",
        mime=MIME,
        requested_at=now,
        rendered_at=now,
        email_id=1,
    )
    delivered = DeliveryAttempted(
        event_id=str(uuid.uuid4()),
        message_id=message_id,
        status_id=status_id,
        account_id=account_id,
        recipient=f"r{i}@bench.example",
        outcome=DeliveryOutcome.DELIVERED,
        send_result="SENT",
        occurred_at=now,
        email_id=1,
        started_at=now,
    )
    return rendered, delivered


async def consumed(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """The tracker group's committed offsets, summed per topic (what it consumed, others' traffic included)."""
    committed = await admin.list_consumer_group_offsets("mailstream-tracker")
    totals = {RENDERED.name: 0, DELIVERY.name: 0}
    for tp, meta in committed.items():
        if tp.topic in totals:
            totals[tp.topic] += meta.offset
    return totals


async def main(n: int, rate: float) -> None:
    pid = int((ROOT / ".mailstream/run/tracker.pid").read_text())
    account_id = random.randint(900_000_000, 999_999_999)
    db = await asyncpg.connect(SETTINGS.database_url)
    producer = AIOKafkaProducer(bootstrap_servers=SETTINGS.kafka_bootstrap, acks="all", linger_ms=5)
    await producer.start()
    admin = AIOKafkaAdminClient(bootstrap_servers=SETTINGS.kafka_bootstrap)
    await admin.start()
    try:
        before = await consumed(admin)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        for i in range(n):
            rendered, delivered = records(account_id, i)
            await producer.send(RENDERED.name, encode(rendered), key=rendered.sending_ip.encode())
            await producer.send(DELIVERY.name, encode(delivered), key=delivered.message_id.encode())
            if (ahead := t0 + (i + 1) / rate - time.monotonic()) > 0:
                await asyncio.sleep(ahead)
        await producer.flush()
        while True:
            done = await db.fetchval(
                "SELECT count(*) FROM send_outcomes WHERE account_id = $1 AND status = 'COMPLETE'", account_id
            )
            tracked = await db.fetchval("SELECT count(*) FROM tracked_messages WHERE account_id = $1", account_id)
            if done >= n and tracked >= n:
                break
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - t0
        await asyncio.sleep(3.5)  # the tracker commits its offsets every 2.8 s
        cpu, after = cpu_seconds(pid) - cpu0, await consumed(admin)
        rendered, delivery = (after[t] - before[t] for t in (RENDERED.name, DELIVERY.name))
        print(f"{n} messages at {rate:.0f}/s: done in {elapsed:.1f} s, tracker CPU {cpu:.2f} s", end="")
        print(f" = {cpu / n * 1000:.2f} ms/msg")
        print(f"  consumed meanwhile (others' traffic too): {rendered} rendered, {delivery} delivery records")
        print(f"  = {cpu / max(1, rendered) * 1000:.2f} ms per rendered record consumed")
    finally:
        await producer.stop()
        await admin.close()
        await asyncio.sleep(2.5)  # the statistics rows are materialized every second
        for table in ("send_outcomes", "tracked_messages", "stats"):
            await db.execute(f"DELETE FROM {table} WHERE account_id = $1", account_id)
        await db.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000, float(sys.argv[2]) if len(sys.argv) > 2 else 200))
