"""Commit-after-outcome with a real broker and database: a private sender killed (SIGKILL) or
stopped (SIGTERM) in the middle of a run, then restarted; every message must arrive at a
private sink (mailsink.py in its own process), and duplicates only inside the stated window."""

import asyncio
import collections
import signal
import time

import pytest

pytestmark = pytest.mark.integration


async def run_interrupted(sig, count, topics, producer, sink_process, sender_process, policy_dir, make_rendered):
    sink = await sink_process()
    policy = policy_dir()
    group = f"{topics.prefix}sender"
    first = await sender_process(topics, policy, relay=f"127.0.0.1:{sink.port}", group=group)
    msgs = [make_rendered(f"once{n}@example.com") for n in range(count)]
    started = time.monotonic()
    await topics.send(producer, msgs)
    await sink.wait_for(count // 4, within=60)
    code = await first.stop(sig)
    await sender_process(topics, policy, relay=f"127.0.0.1:{sink.port}", group=group)
    received = await sink.wait_for(count, within=120)
    elapsed = time.monotonic() - started
    await asyncio.sleep(2)  # anything extra would show up now
    received = await sink.messages()
    copies = collections.Counter(r["rcpt_tos"][0] for r in received)
    missing = {m.recipients[0] for m in msgs} - set(copies)
    duplicated = {rcpt: n for rcpt, n in copies.items() if n > 1}
    print(f"{sig.name}: exit {code}, {count} messages in {elapsed:.1f}s, {len(duplicated)} duplicated")
    return code, missing, duplicated


async def test_sigterm_mid_run_loses_nothing_and_duplicates_nothing(
    topics, producer, sink_process, sender_process, policy_dir, make_rendered
):
    code, missing, duplicated = await run_interrupted(
        signal.SIGTERM, 2000, topics, producer, sink_process, sender_process, policy_dir, make_rendered
    )
    assert code == 0  # a graceful stop: in-flight transactions finished, the batch committed
    assert missing == set() and duplicated == {}


async def test_kill_9_mid_run_loses_nothing_and_duplicates_only_in_flight_transactions(
    topics, producer, sink_process, sender_process, policy_dir, make_rendered
):
    code, missing, duplicated = await run_interrupted(
        signal.SIGKILL, 5000, topics, producer, sink_process, sender_process, policy_dir, make_rendered
    )
    assert code == -signal.SIGKILL
    assert missing == set()
    # The window stated in finish.py / docs/sender-notes.md: a message the receiver accepted
    # whose delivery record was not yet written when the process died is sent again. Those
    # are at most the SMTP transactions in flight (connection_limit 10 of the default site).
    assert len(duplicated) <= 10 and all(n == 2 for n in duplicated.values())
