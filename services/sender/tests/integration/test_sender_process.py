"""A private sender process on private topics (real broker, real PostgreSQL), delivering to
private SMTP receivers on loopback."""

import asyncio
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
