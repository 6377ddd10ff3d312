"""kill -9 of the trigger process while it turns a topic of orders into receipts (issue 16).

Orders are produced at a steady rate while the trigger process is killed twice (SIGKILL, then
`stack.sh restart triggers`). The records it had read but not committed are read again by the
restarted process; their sendIds make the second pass send nothing again. Afterwards every order
has exactly one receipt at the sink: nothing lost, nothing duplicated.
"""

from __future__ import annotations

import asyncio
import collections
import subprocess
import time
from pathlib import Path

import pytest
import triggers_kit as kit
from stack_processes import kill_9

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy/local/stack.sh"
ORDERS = 3000
RATE = 150.0  # orders per second: ~20 s of producing, two kills within it


def kill_9_and_restart(service: str) -> None:
    kill_9(service)
    subprocess.run([str(STACK), "restart", service], check=True, timeout=300, stdout=subprocess.DEVNULL)


async def test_kill_9_of_the_trigger_process_loses_and_duplicates_nothing(api, new_account, sink):
    topic, domain, run = kit.new_run()
    await kit.create_topic(topic)
    headers = {"Authorization": f"Bearer {new_account('trigger-faults')}"}
    email_id = await kit.receipt_email(api, headers)
    rule = await kit.create_rule(api, headers, kit.receipt_rule(topic, email_id))
    orders = [kit.order(i, domain, run) for i in range(ORDERS)]
    try:

        async def produce_steadily() -> None:
            started = time.monotonic()
            for start in range(0, ORDERS, 50):
                await kit.produce(topic, kit.json_records(orders[start : start + 50]))
                await asyncio.sleep(max(0.0, started + (start + 50) / RATE - time.monotonic()))

        producing = asyncio.create_task(produce_steadily())
        kills = 0
        for threshold in (ORDERS // 5, ORDERS // 2):
            await kit.wait_messages(sink.client, domain, threshold, within=120)
            await asyncio.to_thread(kill_9_and_restart, "triggers")
            kills += 1
        await producing
        found = await kit.wait_messages(sink.client, domain, ORDERS, within=300)
        await kit.wait_caught_up(rule["consumerGroup"], topic, within=120)
        await asyncio.sleep(5)  # a duplicate would arrive by now
        found = await kit.messages(sink.client, domain)
        per_recipient = collections.Counter(r for m in found for r in m["rcpt_tos"])
        missing = {o["customer"]["email"] for o in orders} - set(per_recipient)
        duplicated = {r: n for r, n in per_recipient.items() if n > 1}
        print(
            f"\n{ORDERS} orders, {kills} kills: {len(found)} receipts, {len(missing)} missing, {len(duplicated)} twice"
        )
        assert kills == 2
        assert not missing, sorted(missing)[:5]
        assert not duplicated, list(duplicated.items())[:5]
        assert len(found) == ORDERS
    finally:
        await api.delete(f"/mailstream/v1/triggers/{rule['id']}", headers=headers)
        await kit.delete_topic(topic)
