"""Delivery through the whole running stack (gateway -> renderer -> sender -> sink): the delivery
event on email.delivery, the shipped policy, a dedicated pool (DKIM with a verified sending
domain: test_sending_domains.py).

The sink's fault modes are not used (the stack is shared); faults (421, 550, downtime, kill -9,
per-IP limits with two processes) are covered by the sender's integration tests against
private receivers and private topics: services/sender/tests/integration/.
"""

import subprocess
import sys
import time
import uuid
from pathlib import Path

import dev_dns
import pytest
from aiokafka import AIOKafkaConsumer

from mailstream.schemas import DeliveryOutcome, decode
from mailstream.schemas.topics import DELIVERY
from testkit import common_settings

pytestmark = pytest.mark.e2e
SETTINGS = common_settings()
REPO = Path(__file__).resolve().parents[2]


async def receipt_email(api, headers, from_email: str) -> int:
    """A transactional receipt converted to the single-send API; its email id."""
    created = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={
            "name": "Receipt",
            "subject": "Your receipt",
            "fromName": "Shop",
            "fromEmail": from_email,
            "html": "<p>Thanks for your order.</p>",
            "subscriptionType": "TRANSACTIONAL",
        },
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=headers)
    return email_id


async def single_send(api, headers, from_email: str, to: str) -> dict:
    email_id = await receipt_email(api, headers, from_email)
    reply = await api.post(
        "/marketing/v3/transactional/single-email/send",
        headers=headers,
        json={"emailId": email_id, "message": {"to": to, "sendId": str(uuid.uuid4())}},
    )
    assert reply.status_code == 200, reply.text
    return {"email_id": email_id, **reply.json()}


async def test_a_delivered_message_is_reported_on_email_delivery(api, new_account, sink, unique_address):
    consumer = AIOKafkaConsumer(
        DELIVERY.name,
        bootstrap_servers=SETTINGS.kafka_bootstrap,
        group_id=f"e2e-delivery-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not consumer.assignment():
            await consumer.getmany(timeout_ms=200)
        for tp in consumer.assignment():  # read from the current end only
            await consumer.seek_to_end(tp)
            await consumer.position(tp)
        headers = {"Authorization": f"Bearer {new_account('delivery')}"}
        to = unique_address()
        sent = await single_send(api, headers, "orders@shop.example", to)
        (received,) = await sink.wait_for(to)
        event = None
        deadline = time.monotonic() + 20
        while event is None and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    e = decode(r.value)
                    if e.status_id == sent["statusId"]:
                        event = e
    finally:
        await consumer.stop()
    assert event is not None, "no event on email.delivery"
    assert (event.outcome, event.send_result, event.smtp_code) == (DeliveryOutcome.DELIVERED, "SENT", 250)
    assert event.sending_ip == received["peer"] == "127.0.0.2" and event.recipient == to
    assert event.remote_host == "127.0.0.1" and event.attempt == 0


def test_the_shipped_policy_passes_the_check_command():
    done = subprocess.run(
        [sys.executable, "-m", "mailstream.sender.policy", "check", str(REPO / "deploy/policy")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


async def test_a_dedicated_pool_of_two_ips_weighted_1_1_uses_both_in_equal_shares(
    api, new_account, sink, unique_address
):
    headers = {"Authorization": f"Bearer {new_account('pool')}"}
    # deploy/policy/pools.toml: [pools.pair] = 127.0.0.2 and 127.0.0.3, weight 1 each; ready once a
    # domain of the account verifies
    assigned = await api.put("/mailstream/v1/ips", headers=headers, json={"pool": "pair"})
    assert assigned.status_code == 200, assigned.text
    domain = await dev_dns.verified_domain(api, headers)
    try:
        email_id = await receipt_email(api, headers, f"orders@{domain}")
        recipients = [unique_address() for _ in range(200)]
        for to in recipients:
            reply = await api.post(
                "/marketing/v3/transactional/single-email/send",
                headers=headers,
                json={"emailId": email_id, "message": {"to": to}},
            )
            assert reply.status_code == 200, reply.text
        peers = []
        for to in recipients:
            (received,) = await sink.wait_for(to, within=60)
            peers.append(received["peer"])
    finally:
        await dev_dns.remove_domain(api, headers, domain)
    shares = {ip: peers.count(ip) / len(peers) for ip in set(peers)}
    assert set(shares) == {"127.0.0.2", "127.0.0.3"}
    assert all(abs(share - 0.5) <= 0.10 for share in shares.values()), shares
