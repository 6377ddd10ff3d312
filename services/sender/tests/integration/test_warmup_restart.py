"""Issue 15's acceptance for the sender: a sender killed (SIGKILL) and restarted in the middle of
a warm-up day keeps the IP's cap, counted at a real SMTP sink. Private topics, group and policy
(conftest.py); the warming IP is a random loopback address, so no other run shares its position."""

import asyncio
import random
import signal
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from mailstream.schemas import DeliveryOutcome

pytestmark = pytest.mark.integration
CAP = 5


def warming_policy(tmp_path, address: str):
    """One IP, warming by a daily schedule of 5 (no warmup_started: day 0 is its first use), and
    no warm IP to overflow to: over the cap, mail is deferred."""
    folder = tmp_path / f"policy-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    (folder / "pools.toml").write_text(
        f'[sources.new]\naddress = "{address}"\nwarmup = "daily"\n[pools.shared.new]\nweight = 1\n'
    )
    (folder / "warmup.toml").write_text(f'[schedules.daily]\nperiod = "day"\ncaps = [{CAP}]\n')
    return folder


async def not_near_midnight() -> None:
    """The cap is per UTC day: a run across midnight would see two days' caps."""
    now = datetime.now(UTC)
    left = (now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1) - now).total_seconds()
    if left < 180:
        await asyncio.sleep(left + 1)


async def outcomes(topics, ids: set[str], within: float) -> dict[str, dict[DeliveryOutcome, str]]:
    """Each message's outcomes (with the reply) on the private email.delivery, once every one in
    `ids` has one."""
    events = await topics.deliveries(10_000, within=within, until=lambda es: ids <= {e.message_id for e in es})
    found: dict[str, dict[DeliveryOutcome, str]] = {}
    for e in events:
        found.setdefault(e.message_id, {})[e.outcome] = e.smtp_reply or ""
    return found


async def test_a_sender_killed_mid_day_keeps_the_ip_cap(
    tmp_path, topics, producer, sink_process, sender_process, make_rendered
):
    await not_near_midnight()
    ip = f"127.{random.randrange(100, 250)}.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
    policy = warming_policy(tmp_path, ip)
    sink = await sink_process()
    relay = f"127.0.0.1:{sink.port}"

    first = await sender_process(topics, policy, relay=relay)
    before = [make_rendered(f"early{n}@example.com", ip=ip) for n in range(3)]
    await topics.send(producer, before)
    assert len(await sink.wait_for(3, within=30)) == 3
    seen = await outcomes(topics, {m.message_id for m in before}, within=30)
    assert all(set(seen[m.message_id]) == {DeliveryOutcome.DELIVERED} for m in before)
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL

    await sender_process(topics, policy, relay=relay)  # same private group: continues the partitions
    after = [make_rendered(f"late{n}@example.com", ip=ip) for n in range(7)]
    await topics.send(producer, after)
    seen = await outcomes(topics, {m.message_id for m in before + after}, within=60)
    await asyncio.sleep(1.0)  # anything sent past the cap would have reached the sink by now

    delivered = [m for m in after if DeliveryOutcome.DELIVERED in seen[m.message_id]]
    deferred = [m for m in after if set(seen[m.message_id]) == {DeliveryOutcome.DEFERRED}]
    assert (len(delivered), len(deferred)) == (CAP - 3, 7 - (CAP - 3))
    at_sink = await sink.messages()
    assert len(at_sink) == CAP, f"{len(at_sink)} messages left {ip} today; its cap is {CAP}"
    assert {m["peer"] for m in at_sink} == {ip}
    # the rest waits in a retry tier for tomorrow's period
    assert all(
        f"warm-up cap of {CAP} reached on {ip}" in seen[m.message_id][DeliveryOutcome.DEFERRED] for m in deferred
    )
