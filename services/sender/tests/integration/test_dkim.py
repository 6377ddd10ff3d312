"""DKIM signing with a verified sending domain's key (real PostgreSQL: the domain added and
verified with the admin CLI, as operators do, its records on the local stack's DNS server),
verified at the receiver with dkimpy against the published record."""

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import dev_dns
import dkim
import pytest

from mailstream.schemas import DeliveryOutcome

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).with_name("mailstream"))


def admin(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MAILSTREAM_DNS_NAMESERVERS": dev_dns.SERVER}
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
async def sending_domain(account_id):
    """A verified sending domain of the account: `mailstream domains add`, publish, `verify`."""
    domain = f"d{uuid.uuid4().hex[:10]}.mailstream.test"
    added = await asyncio.to_thread(admin, "domains", "add", domain, "--account", str(account_id), "--json")
    assert added.returncode == 0, added.stderr
    view = json.loads(added.stdout)
    await asyncio.to_thread(dev_dns.publish, view)
    try:
        verified = await asyncio.to_thread(admin, "domains", "verify", domain, "--account", str(account_id))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        yield account_id, domain, view["dkimSelector"]
    finally:
        await asyncio.to_thread(dev_dns.withdraw, domain)
        await asyncio.to_thread(admin, "domains", "delete", domain, "--account", str(account_id))


async def test_a_delivered_message_carries_a_valid_signature_of_the_sending_domain(
    sending_domain, topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered
):
    account, domain, selector = sending_domain
    sink = await smtp_server(receiver_class())
    await sender_process(topics, policy_dir(), relay=f"127.0.0.1:{sink.port}")
    signed = make_rendered("signed@example.com", account_id=account, domain=domain)
    unsigned = make_rendered("unsigned@example.com", account_id=account, domain="unverified.example")
    await topics.send(producer, [signed, unsigned])
    events = await topics.deliveries(2)
    assert all(e.outcome is DeliveryOutcome.DELIVERED for e in events)
    data = {r["rcpt_tos"][0]: r["data"] for r in sink.received}

    dnsfunc = dev_dns.txt  # the record the domain published
    message = data["signed@example.com"]
    assert message.startswith(b"DKIM-Signature:")
    assert f"d={domain}".encode() in message and f"s={selector}".encode() in message
    assert dkim.verify(message, dnsfunc=dnsfunc)
    assert not dkim.verify(message.replace(b"hello", b"HELLO"), dnsfunc=dnsfunc)  # the body is covered
    assert b"DKIM-Signature" not in data["unsigned@example.com"]  # no verified key, no signature
