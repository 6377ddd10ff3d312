"""Webhooks while the receiver fails (issue 19's acceptance), against the running stack.

The stack's dispatcher is restarted with a retry schedule of seconds (MAILSTREAM_WEBHOOK_RETRY_DELAYS,
`stack.sh restart webhooks` with it in the environment) and restarted with the published one at
the end. A real HTTP receiver on loopback is down for 60 s, answers 500 for 30 s, then takes
everything: every event of 2,000 sends arrives exactly once per event id, every POST verifies with
the documented snippet, and a replay from the test's start sends the same event ids again. With a
schedule of fractions of a second, an endpoint that always fails has its events parked, with the
reason, in one PARKED entry.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import webhooks_kit as kit
from webhook_receiver import Receiver

pytestmark = [pytest.mark.faults, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy/local/stack.sh"
SENDS = 2000
DOWN_S, FAILING_S = 60, 30
SECONDS_SCHEDULE = ",".join(["1", "2", "4"] + ["5"] * 30)  # 157 s: outlives the 90 s outage
TINY_SCHEDULE = "0.2,0.2,0.2"


def restart_dispatcher(delays: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MAILSTREAM_WEBHOOK_RETRY_DELAYS"}
    if delays is not None:
        env["MAILSTREAM_WEBHOOK_RETRY_DELAYS"] = delays
    subprocess.run([str(STACK), "restart", "webhooks"], check=True, timeout=180, env=env, stdout=subprocess.DEVNULL)


@pytest.fixture
def dispatcher_with():
    used = []

    def restart(delays: str) -> None:
        used.append(delays)
        restart_dispatcher(delays)

    yield restart
    if used:
        restart_dispatcher(None)  # the published schedule again


async def test_an_always_failing_endpoint_has_its_events_parked_with_the_reason(api, new_account, dispatcher_with):
    await asyncio.to_thread(dispatcher_with, TINY_SCHEDULE)
    key = new_account("wh-park")
    receiver = await Receiver().start()
    receiver.mode = "failing"
    try:
        hook = await kit.create_webhook(api, key, receiver.url, eventTypes=["delivered"])
        email_id = await kit.make_email(api, key)
        _, recipients = kit.addresses(3)
        await kit.send_to(api, key, email_id, recipients)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            view = (await api.get(f"{kit.WEBHOOKS}/{hook['id']}", headers=kit.auth(key))).json()
            if view["parkedEvents"] == 3:
                break
            await asyncio.sleep(0.3)
        assert view["parkedEvents"] == 3 and view["pendingEvents"] == 0, view
        log = await kit.deliveries(api, key, hook["id"])
        parked = [d for d in log if d["kind"] == "PARKED"]
        failed = [d for d in log if d["kind"] == "EVENTS"]
        assert sum(len(d["eventIds"]) for d in parked) == 3  # one notice per event, at the final failure
        assert all("parked after 4 attempts: HTTP 500" == d["error"] for d in parked), parked
        assert all(d["outcome"] == "FAILED" and d["statusCode"] == 500 for d in failed)
        per_event = {}
        for d in failed:
            for event_id in d["eventIds"]:
                per_event[event_id] = per_event.get(event_id, 0) + 1
        assert sorted(per_event.values()) == [4, 4, 4]  # the first attempt and three retries each
        assert receiver.failed_posts == len(failed) and receiver.posts == []
    finally:
        await receiver.stop()


async def test_2000_sends_reach_a_receiver_that_was_down_and_failing_exactly_once_then_a_replay(
    api, new_account, dispatcher_with
):
    await asyncio.to_thread(dispatcher_with, SECONDS_SCHEDULE)
    key = new_account("wh-accept")
    receiver = Receiver()  # not started: its port refuses connections
    hook = await kit.create_webhook(api, key, receiver.url, eventTypes=["delivered"])
    receiver.secrets = [hook["secret"]]
    since = datetime.now(UTC) - timedelta(seconds=1)
    started = time.monotonic()
    email_id = await kit.make_email(api, key)
    _, recipients = kit.addresses(SENDS)
    await kit.send_to(api, key, email_id, recipients)
    try:
        await asyncio.sleep(max(0.0, started + DOWN_S - time.monotonic()))
        queued = (await api.get(f"{kit.WEBHOOKS}/{hook['id']}", headers=kit.auth(key))).json()
        await receiver.start()
        receiver.mode = "failing"
        await asyncio.sleep(FAILING_S)
        receiver.mode = "up"
        recovered = time.monotonic()
        got = await receiver.wait_events(SENDS, within=120)
        took = time.monotonic() - recovered
        await asyncio.sleep(8)  # a duplicate would arrive by now (retries are 5 s apart)
        counts = receiver.ids()
        log = await kit.deliveries(api, key, hook["id"], limit=500)
        failed_attempts = sum(1 for d in log if d["outcome"] == "FAILED")
        print(
            f"\n{SENDS} sends: {len(counts)} event ids at the receiver after {DOWN_S} s down and {FAILING_S} s "
            f"of 500s ({queued['pendingEvents']} pending when it came up, {receiver.failed_posts} POSTs answered "
            f"500, {failed_attempts} failed attempts logged); all in {took:.1f} s after it recovered, "
            f"{len(receiver.posts)} POSTs"
        )
        assert len(got) >= SENDS
        assert len(counts) == SENDS and set(counts.values()) == {1}, counts.most_common(3)
        assert {e["email"] for e in receiver.events()} == set(recipients)
        assert receiver.failed_posts > 0 and all(p.verified for p in receiver.posts)
        view = (await api.get(f"{kit.WEBHOOKS}/{hook['id']}", headers=kit.auth(key))).json()
        assert view["pendingEvents"] == 0 and view["parkedEvents"] == 0

        live_ids = set(counts)
        before = len(receiver.posts)
        reply = await api.post(
            f"{kit.WEBHOOKS}/{hook['id']}/replay", headers=kit.auth(key), json={"since": since.isoformat()}
        )
        assert reply.status_code == 202, reply.text
        done = await kit.wait_replay_done(api, key, hook["id"], reply.json()["id"], within=120)
        assert done["state"] == "DONE" and done["events"] == SENDS, done
        await receiver.wait_events(2 * SENDS, within=120)
        replayed = [e["event_id"] for p in receiver.posts[before:] for e in p.events]
        assert sorted(replayed) == sorted(live_ids)  # the same event ids, each once more
        assert all(p.verified and p.headers.get("Mailstream-Replay-Id") == done["id"] for p in receiver.posts[before:])
    finally:
        await receiver.stop()
        async with httpx.AsyncClient(base_url=str(api.base_url), timeout=15) as client:
            await client.delete(f"{kit.WEBHOOKS}/{hook['id']}", headers=kit.auth(key))


async def test_a_graceful_restart_of_the_dispatcher_mid_stream_sends_nothing_twice(api, new_account):
    """SIGTERM (stack.sh restart) while events flow: the batch in hand is queued and committed, the POSTs
    in flight are recorded, and the restarted dispatcher reads on: every event once, none lost."""
    key = new_account("wh-restart")
    receiver = await Receiver().start()
    count = 500
    try:
        hook = await kit.create_webhook(api, key, receiver.url, eventTypes=["delivered"])
        receiver.secrets = [hook["secret"]]
        email_id = await kit.make_email(api, key)
        _, recipients = kit.addresses(count)
        await kit.send_to(api, key, email_id, recipients)
        await receiver.wait_events(count // 5, within=60)
        at_restart = len(receiver.events())
        await asyncio.to_thread(restart_dispatcher, None)
        await receiver.wait_events(count, within=120)
        await asyncio.sleep(3)
        counts = receiver.ids()
        print(
            f"\n{count} sends, graceful restart after {at_restart} events: "
            f"{len(counts)} ids, at most {max(counts.values())} times each"
        )
        assert at_restart < count, "all events arrived before the restart: nothing was tested"
        assert len(counts) == count and set(counts.values()) == {1}, counts.most_common(3)
        assert all(p.verified for p in receiver.posts)
    finally:
        await receiver.stop()
