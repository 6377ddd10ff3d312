"""A private sender process on private topics (real broker, real PostgreSQL), delivering to
private SMTP receivers on loopback."""

import asyncio
import collections
import time

import pytest

from mailstream.schemas import DeliveryOutcome

pytestmark = pytest.mark.integration


def max_per_second(times: list[float]) -> int:
    """The most arrivals in any one-second window."""
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


async def wait_until(predicate, within: float, step: float = 0.2):
    deadline = time.monotonic() + within
    while not predicate() and time.monotonic() < deadline:  # noqa: ASYNC110 - polling another process
        await asyncio.sleep(step)
    return predicate()


async def test_delivers_and_publishes_delivered_events(
    topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered
):
    sink = await smtp_server(receiver_class())
    await sender_process(topics, policy_dir(), relay=f"127.0.0.1:{sink.port}")
    msgs = [make_rendered(f"r{n}@example.com") for n in range(20)]
    await topics.send(producer, msgs)
    assert await wait_until(lambda: len(sink.received) >= 20, 30)
    events = await topics.deliveries(20)
    assert {e.message_id for e in events} == {m.message_id for m in msgs}
    assert all(e.outcome is DeliveryOutcome.DELIVERED and e.send_result == "SENT" for e in events)
    assert {r["peer"] for r in sink.received} == {"127.0.0.2"}


RETRY_FAST = {"sender_retry_base_seconds": 1, "sender_retry_max_age_seconds": 60, "sender_smtp_timeout": 5}


async def test_a_deferral_is_retried_through_the_delay_topics_then_delivered(
    topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered
):
    refusals = collections.Counter()

    def reply(address):
        if refusals[address] < 2:  # two 4xx answers, then accepted
            refusals[address] += 1
            return "451 4.3.0 try again later"
        return None

    sink = await smtp_server(receiver_class(reply))
    await sender_process(topics, policy_dir(), relay=f"127.0.0.1:{sink.port}", **RETRY_FAST)
    msgs = [make_rendered(f"retry{n}@example.com") for n in range(5)]
    started = time.monotonic()
    await topics.send(producer, msgs)
    events = await topics.deliveries(15, within=60)
    by_message = collections.defaultdict(list)
    for e in events:
        by_message[e.message_id].append((e.attempt, e.outcome))
    for m in msgs:
        assert by_message[m.message_id] == [
            (0, DeliveryOutcome.DEFERRED),
            (1, DeliveryOutcome.DEFERRED),
            (2, DeliveryOutcome.DELIVERED),
        ]
    assert sorted(r["rcpt_tos"][0] for r in sink.received) == sorted(m.recipients[0] for m in msgs)
    # backoff 1 s then 2 s: the deliveries came after about 3 s, not at once
    assert min(r["at"] for r in sink.received) - started >= 2.5


async def test_a_message_deferred_past_the_maximum_age_expires_as_a_soft_bounce(
    topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered
):
    sink = await smtp_server(receiver_class(lambda a: "421 4.4.2 busy"))
    await sender_process(
        topics,
        policy_dir(),
        relay=f"127.0.0.1:{sink.port}",
        sender_retry_base_seconds=1,
        sender_retry_max_age_seconds=4,
    )
    msg = make_rendered("expiring@example.com")
    await topics.send(producer, [msg])
    events = await topics.deliveries(
        10, within=30, until=lambda es: bool(es) and es[-1].outcome is not DeliveryOutcome.DEFERRED
    )
    final = [e for e in events if e.outcome is not DeliveryOutcome.DEFERRED]
    assert [(e.outcome, e.bounce_class, e.send_result) for e in final] == [
        (DeliveryOutcome.BOUNCED, "soft:MessageExpired", "UNDELIVERABLE")
    ]
    assert final[0].attempt >= 1 and sink.received == []


async def test_a_5xx_is_a_classified_hard_bounce(
    topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered
):
    sink = await smtp_server(receiver_class(lambda a: "550 5.1.1 <x>: Recipient address rejected: User unknown"))
    await sender_process(topics, policy_dir(), relay=f"127.0.0.1:{sink.port}")
    await topics.send(producer, [make_rendered("nobody@example.com")])
    (event,) = await topics.deliveries(1)
    assert (event.outcome, event.bounce_class, event.send_result, event.smtp_code) == (
        DeliveryOutcome.BOUNCED,
        "hard:InvalidRecipient",
        "UNDELIVERABLE",
        550,
    )


LIMIT_50 = 'max_message_rate = "50/s"'


@pytest.mark.parametrize("processes", [1, 2])
async def test_the_per_ip_limit_holds_at_the_sink(
    processes, topics, producer, sink_process, sender_process, policy_dir, make_rendered
):
    # 127.0.0.2 and 127.0.0.5 hash to partitions 5 and 0: with two processes, one each.
    sink = await sink_process()
    policy = policy_dir(extra_a=LIMIT_50, extra_b=LIMIT_50)
    group = f"{topics.prefix}sender"
    senders = [
        await sender_process(topics, policy, relay=f"127.0.0.1:{sink.port}", group=group) for _ in range(processes)
    ]
    if processes == 2:
        await asyncio.sleep(6)  # the first process rejoins: wait until the partitions are split
    per_ip = 250
    msgs = [make_rendered(f"rate{n}@example.com", ip=ip) for n in range(per_ip) for ip in ("127.0.0.2", "127.0.0.5")]
    await topics.send(producer, msgs)
    received = await sink.wait_for(len(msgs), 60)
    await asyncio.sleep(1)
    received = await sink.messages()
    assert len(received) == len(msgs)
    for ip in ("127.0.0.2", "127.0.0.5"):
        times = [r["at"] for r in received if r["peer"] == ip]
        assert len(times) == per_ip
        peak = max_per_second(times)
        print(f"{processes} process(es), {ip}: at most {peak} messages in one second at the sink")
        assert peak <= 55, f"{ip}: {peak} in one second"
        assert max(times) - min(times) >= (per_ip - 1) / 50 - 0.2  # it was not just a slow trickle
    assert len({r["rcpt_tos"][0] + r["peer"] for r in received}) == len(msgs)  # no duplicates
    if processes == 2:
        delivered = [s.metric("mailstream_sender_outcomes_total{") for s in senders]
        assert all(d > 0 for d in delivered), f"each process owns one IP: {delivered}"


async def test_a_421_for_a_domain_slows_it_down_then_it_recovers_and_everything_arrives(
    topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered
):
    shaping = """
[default]
max_message_rate = "100/s"
[[default.automation]]
regex = "slow down"
action = "throttle"
max_message_rate = "5/s"
duration = "3s"
"""
    refused: dict[str, float] = {}

    def reply(address):
        number = int(address.split("@")[0].removeprefix("busy"))
        if 50 <= number < 55 and address not in refused:
            refused[address] = time.monotonic()
            return "421 4.7.0 too many messages, slow down"
        return None

    sink = await smtp_server(receiver_class(reply))
    await sender_process(
        topics,
        policy_dir(shaping=shaping),
        relay=f"127.0.0.1:{sink.port}",
        sender_max_throttle_wait=2,
        **RETRY_FAST,
    )
    msgs = [make_rendered(f"busy{n}@busy.example") for n in range(300)]
    await topics.send(producer, msgs)
    assert await wait_until(lambda: len(sink.received) >= 300, 60)
    assert sorted(r["rcpt_tos"][0] for r in sink.received) == sorted(m.recipients[0] for m in msgs)
    t421 = min(refused.values())
    times = [r["at"] for r in sink.received]
    throttled = [t for t in times if t421 + 0.5 <= t < t421 + 2.5]
    recovered = [t for t in times if t >= t421 + 3.5]
    assert len(throttled) <= 5 * 2 + 6, f"{len(throttled)} arrivals in 2 s while throttled to 5/s"
    assert max_per_second(recovered) >= 30, "the rate came back after the throttle's 3 s"
    delivered = lambda es: sum(e.outcome is DeliveryOutcome.DELIVERED for e in es) >= 300  # noqa: E731
    events = await topics.deliveries(1000, within=20, until=delivered)
    assert sum(e.outcome is DeliveryOutcome.DEFERRED for e in events) >= 5
    assert {e.message_id for e in events if e.outcome is DeliveryOutcome.DELIVERED} == {m.message_id for m in msgs}


async def test_a_warming_ip_over_its_cap_overflows_to_a_warm_ip_of_its_pool(
    topics, producer, smtp_server, sender_process, policy_dir, receiver_class, make_rendered, db
):
    from datetime import UTC, datetime

    today = datetime.now(UTC).date().isoformat()
    policy = policy_dir(
        extra_b=f'warmup = "new"\nwarmup_started = {today}', warmup='[schedules.new]\nperiod = "hour"\ncaps = [5, 10]\n'
    )
    sink = await smtp_server(receiver_class())
    await sender_process(topics, policy, relay=f"127.0.0.1:{sink.port}")
    # The position is stored (and outlives a run): this hour's count starts from zero here.
    await db.execute("DELETE FROM warmup_positions WHERE address = '127.0.0.3'")
    msgs = [make_rendered(f"warm{n}@example.com", ip="127.0.0.3", pool="pair") for n in range(12)]
    await topics.send(producer, msgs)
    assert await wait_until(lambda: len(sink.received) >= 12, 30)
    await asyncio.sleep(0.5)
    peers = collections.Counter(r["peer"] for r in sink.received)
    # day 0 of the warming 127.0.0.3 allows 5 an hour; the rest left from the pool's warm 127.0.0.2
    assert peers == {"127.0.0.3": 5, "127.0.0.2": 7}
    events = await topics.deliveries(12)
    assert sorted(e.sending_ip for e in events) == ["127.0.0.2"] * 7 + ["127.0.0.3"] * 5
