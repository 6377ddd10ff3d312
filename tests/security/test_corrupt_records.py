"""Corrupt records on every consumed topic (garbage bytes, a record of the wrong schema, truncated
Avro), on every partition: each is dead-lettered on email.dead-letter with the reason and the
consuming service, and the consumers keep going (a normal send afterwards is delivered, its
status completes, an open is counted and an unsubscribe suppresses)."""

from __future__ import annotations

import asyncio
import email
import re
import time
import uuid
from datetime import UTC, datetime
from email.policy import default

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from mailstream.core.settings import CommonSettings
from mailstream.schemas import (
    DeliveryAttempted,
    DeliveryOutcome,
    EmailRendered,
    EngagementKind,
    EngagementRecorded,
    MessageRendered,
    RecordDeadLettered,
    SendRequested,
    SubscriptionType,
    UnsubscribeReason,
    UnsubscribeRecorded,
    decode,
    encode,
)
from mailstream.schemas.topics import (
    DEAD_LETTER,
    DELIVERY,
    ENGAGEMENT,
    RENDERED,
    RENDERED_META,
    RETRY_TIERS,
    SEND_REQUESTED,
    UNSUBSCRIBE,
)

pytestmark = pytest.mark.e2e
SETTINGS = CommonSettings.from_env()

# topic -> the services consuming it (each dead-letters what it cannot decode)
SPECS = [SEND_REQUESTED, RENDERED, *RETRY_TIERS, RENDERED_META, DELIVERY, ENGAGEMENT, UNSUBSCRIBE]
CONSUMERS = {
    SEND_REQUESTED.name: {"renderer"},
    RENDERED.name: {"sender"},
    RENDERED_META.name: {"tracker"},
    **{tier.name: {"sender"} for tier in RETRY_TIERS},
    DELIVERY.name: {"tracker"},
    ENGAGEMENT.name: {"tracker"},
    UNSUBSCRIBE.name: {"tracker"},
}


def a_valid_record() -> bytes:
    return encode(
        SendRequested(
            message_id=str(uuid.uuid4()),
            status_id=str(uuid.uuid4()),
            account_id=1,
            to="nobody@example.com",
            requested_at=datetime.now(UTC),
        )
    )


def an_engagement() -> bytes:
    return encode(
        EngagementRecorded(
            event_id=str(uuid.uuid4()),
            kind=EngagementKind.OPEN,
            message_id=str(uuid.uuid4()),
            account_id=1,
            recipient="nobody@example.com",
            occurred_at=datetime.now(UTC),
        )
    )


def corruptions(spec) -> dict[str, tuple[bytes, str]]:
    """kind -> (value, a fragment the dead letter's reason must contain)"""
    wrong = an_engagement() if spec is not ENGAGEMENT else a_valid_record()
    right_type = a_valid_record() if spec is SEND_REQUESTED else None
    truncated_source = (
        right_type
        or {
            ENGAGEMENT.name: an_engagement,
            UNSUBSCRIBE.name: lambda: encode(
                UnsubscribeRecorded(
                    event_id=str(uuid.uuid4()),
                    account_id=1,
                    recipient="nobody@example.com",
                    reason=UnsubscribeReason.LINK,
                    occurred_at=datetime.now(UTC),
                )
            ),
        }.get(spec.name, lambda: None)()
    )
    cases = {
        "garbage bytes": (b"\xff\x00not avro at all " + uuid.uuid4().bytes, "not an Avro"),
        # Confluent's frame with an id no registry gave (or no registry at all)
        "unknown schema id": (b"\x00" + (2**31 - 3).to_bytes(4, "big") + uuid.uuid4().bytes, "schema id "),
        "wrong schema": (wrong, "expected "),
    }
    if truncated_source is not None:
        cases["truncated Avro"] = (truncated_source[: len(truncated_source) // 2], "corrupt ")
    else:  # a record of the topic's type, cut: the header is right, the body ends early
        cases["truncated Avro"] = (None, "corrupt ")
    return cases


async def test_corrupt_records_on_every_topic_are_dead_lettered_and_consumers_keep_going(
    h, api, account, producer, tail, raw_sink
):
    rendered = rendered_record()
    rendered_meta = encode(MessageRendered.of(decode(rendered, EmailRendered)))
    delivery = encode(
        DeliveryAttempted(
            event_id=str(uuid.uuid4()),
            message_id=str(uuid.uuid4()),
            status_id=str(uuid.uuid4()),
            account_id=1,
            recipient="nobody@example.com",
            outcome=DeliveryOutcome.DELIVERED,
            send_result="SENT",
            occurred_at=datetime.now(UTC),
            started_at=datetime.now(UTC),
        )
    )
    produced = {}  # (topic, partition, offset) -> (kind, key, value, reason fragment)
    async with tail(DEAD_LETTER, record_type=RecordDeadLettered) as dead:
        for spec in SPECS:
            for kind, (value, fragment) in corruptions(spec).items():
                if value is None:
                    whole = {RENDERED_META.name: rendered_meta, DELIVERY.name: delivery}.get(spec.name, rendered)
                    value = whole[: len(whole) // 2]
                for partition in range(spec.partitions):
                    key = f"sec-corrupt-{uuid.uuid4().hex[:8]}".encode()
                    meta = await producer.send_and_wait(spec.name, value, key=key, partition=partition)
                    produced[(spec.name, partition, meta.offset)] = (kind, key, value, fragment)

        expected = {(t, p, o, s) for (t, p, o) in produced for s in CONSUMERS[t]}
        ours = lambda d: (d.source_topic, d.source_partition, d.source_offset) in produced  # noqa: E731
        letters = await dead.collect(ours, count=len(expected), within=120, settle=2.0)

    seen = {}
    for d in letters:
        seen.setdefault((d.source_topic, d.source_partition, d.source_offset, d.service), []).append(d)
        kind, key, value, fragment = produced[(d.source_topic, d.source_partition, d.source_offset)]
        assert fragment in d.reason, (d.source_topic, kind, d.reason)
        assert (d.key, d.value) == (key, value), "the dead letter must carry the original record"
    missing = sorted(expected - set(seen))
    # Retry tiers are read in due order: a record behind deferred ones (the shared stack may hold a
    # backlog from other suites) is dead-lettered when the sender reaches it, not before.
    waiting = await not_reached_by_the_sender([m for m in missing if m[0].startswith(RENDERED.name + ".retry")])
    missing = [m for m in missing if m not in waiting]
    duplicated = {k: len(v) for k, v in seen.items() if len(v) > 1}
    kinds = sorted({v[0] for v in produced.values()})
    print(
        f"Corrupt records: {len(CONSUMERS)} topics x {len(kinds)} kinds ({', '.join(kinds)}) x every partition = "
        f"{len(produced)} records, {len(expected)} dead letters expected , "
        f"{len(set(seen) & expected)} found with reason and service, {len(missing)} missing, "
        f"{len(duplicated)} duplicated, {len(waiting)} still queued behind deferred records on retry tiers"
    )
    reasons = sorted({re.sub(r"[0-9a-f]{16}", "<fp>", d.reason)[:60] for d in letters})
    print("  reasons:", " | ".join(reasons))
    assert missing == [], missing[:10]

    await consumers_keep_going(h, api, account, producer, raw_sink)


async def not_reached_by_the_sender(records: list[tuple]) -> list[tuple]:
    """Those of (topic, partition, offset, service) that the sender's group has not consumed yet."""
    if not records:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=SETTINGS.kafka_bootstrap, group_id="mailstream-sender")
    await consumer.start()
    try:
        waiting = []
        for topic, partition, offset, service in records:
            committed = await consumer.committed(TopicPartition(topic, partition))
            if committed is None or committed <= offset:
                waiting.append((topic, partition, offset, service))
        return waiting
    finally:
        await consumer.stop()


def rendered_record() -> bytes:
    now = datetime.now(UTC)
    return encode(
        EmailRendered(
            message_id=str(uuid.uuid4()),
            status_id=str(uuid.uuid4()),
            account_id=1,
            subscription_type=SubscriptionType.TRANSACTIONAL,
            mail_from="orders@shop.example",
            recipients=("nobody@example.com",),
            pool="default",
            sending_ip="127.0.0.1",
            sending_domain="shop.example",
            mime=b"Subject: x\r\n\r\nx\r\n",
            requested_at=now,
            rendered_at=now,
        )
    )


async def consumers_keep_going(h, api, account, producer, raw_sink) -> None:
    """After the corrupt records: a send is delivered and completes (renderer, sender, tracker on
    email.rendered and email.delivery), its open is counted (email.engagement), an unsubscribe
    suppresses (email.unsubscribe)."""
    key = account("sec-corrupt-after")
    email_id, reply = await h.create_email(api, key)
    assert email_id, reply.text
    to = h.unique()
    sent = await api.post(h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert sent.status_code == 200, sent.text
    (raw,) = await raw_sink.wait(to, within=90)
    status = await h.final_status(api, key, sent.json()["statusId"], within=60)
    assert (status.get("status"), status.get("sendResult")) == ("COMPLETE", "SENT"), status

    html = email.message_from_bytes(raw, policy=default).get_body(("html",)).get_content()
    pixel = re.search(r'src="([^"]+/o/[^"]+)"', html).group(1)
    async with httpx.AsyncClient(timeout=10) as client:
        assert (
            await client.get(pixel, headers={"User-Agent": "Mozilla/5.0 (X11; Linux) Firefox/120.0"})
        ).status_code == 200
    account_id = (
        await h.db("SELECT account_id FROM send_requests WHERE status_id = $1", uuid.UUID(status["statusId"]))
    )[0]["account_id"]
    opens = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and opens < 1:
        rows = await h.db("SELECT opens_total FROM stats WHERE account_id = $1 AND dimension = 'account'", account_id)
        opens = rows[0]["opens_total"] if rows else 0
        await asyncio.sleep(0.5)
    assert opens == 1

    gone = h.unique()
    unsub = UnsubscribeRecorded(
        event_id=str(uuid.uuid4()),
        account_id=account_id,
        recipient=gone,
        reason=UnsubscribeReason.LINK,
        occurred_at=datetime.now(UTC),
    )
    await producer.send_and_wait(UNSUBSCRIBE.name, encode(unsub), key=f"{account_id}/{gone}".encode())
    rows = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not rows:
        rows = await h.db("SELECT reason FROM suppressions WHERE address = $1", gone)
        await asyncio.sleep(0.3)
    assert [r["reason"] for r in rows] == ["UNSUBSCRIBED"]
    print("  afterwards: a send delivered and COMPLETE/SENT, its open counted, an unsubscribe suppressed")
