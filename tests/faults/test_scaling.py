"""Two replicas each of the renderer, the sender and the tracker (issue 18).

The stack's process of each service gets a second replica in its consumer group; the groups
spread their partitions over both. 5,000 sends go in as fast as the gateway takes them; in the
middle, one replica of each service is killed with SIGKILL (the one that has handled more so
far). Afterwards every send has arrived once (the sender's stated duplicate window aside, as in
test_faults_during_a_run), every status is COMPLETE/SENT, and the per-IP-and-destination rate of
the shipped shaping (100/s) held at the sink: the shared pool's one IP stays on one partition of
email.rendered, hence one sender at a time, whichever replica owns it.

Figures are printed (pytest -s) and written to .mailstream/reliability/scaling.json."""

from __future__ import annotations

import asyncio
import bisect
import collections
import json
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
from prometheus_client.parser import text_string_to_metric_families
from replicas import Replica
from stack_processes import kill_9

from mailstream.core.settings import CommonSettings

pytestmark = [pytest.mark.faults, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy/local/stack.sh"
REPORT = ROOT / ".mailstream/reliability/scaling.json"
SENDS = 5000
SERVICES = {  # service -> (its consumer group, its stack URL)
    "renderer": ("mailstream-renderer", "http://127.0.0.1:8081"),
    "sender": ("mailstream-sender", "http://127.0.0.1:8082"),
    "tracker": ("mailstream-tracker", "http://127.0.0.1:8090"),
}
RATE_PER_IP_AND_SITE = 100  # deploy/policy/shaping.toml [default] max_message_rate = "100/s"


async def group_assignments(group: str) -> list[set[tuple[str, int]]]:
    """Each member's assigned partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=CommonSettings.from_env().kafka_bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    (described,) = response.groups  # (error_code, group, state, protocol_type, protocol, members)
    members = []
    for _member_id, _client, _host, _metadata, assignment in described[5]:
        decoded = ConsumerProtocolMemberAssignment.decode(assignment) if assignment else None
        members.append({(tp.topic, tp.partition) for tp in decoded.partitions()} if decoded else set())
    return members


async def wait_shared(group: str, within: float = 60) -> list[set[tuple[str, int]]]:
    deadline = time.monotonic() + within
    while True:
        members = await group_assignments(group)
        if (len(members) == 2 and all(members)) or time.monotonic() > deadline:
            return members
        await asyncio.sleep(1)


def records_handled(url: str, consumer: str) -> float:
    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        if family.name == "mailstream_consumer_records"
        for s in family.samples
        if s.name.endswith("_total") and s.labels.get("consumer") == consumer
    )


def max_in_one_second(times: list[float]) -> int:
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


@pytest.fixture
def second_replicas(stack, tmp_path):
    replicas = {s: Replica(s, str(ROOT / f".mailstream/logs/{s}-replica-2.log")).start() for s in SERVICES}
    yield replicas
    for replica in replicas.values():
        replica.kill()
    subprocess.run([str(STACK), "up"], check=True, timeout=300, stdout=subprocess.DEVNULL)  # restarts the killed


async def test_two_replicas_share_the_work_and_a_killed_one_loses_nothing(new_account, second_replicas):
    for service, (group, _) in SERVICES.items():
        members = await wait_shared(group)
        assert len(members) == 2 and all(members), f"{service}: partitions not shared: {members}"

    domain = f"scaling-{uuid.uuid4().hex[:8]}.example"
    headers = {"Authorization": f"Bearer {new_account('scaling')}"}
    killed: dict[str, str] = {}
    async with (
        httpx.AsyncClient(base_url="http://127.0.0.1:8080", timeout=30) as api,
        httpx.AsyncClient(base_url="http://127.0.0.1:8025", timeout=60) as sink,
    ):
        created = await api.post(
            "/mailstream/v1/emails",
            headers=headers,
            json={
                "name": "Scaling run",
                "subject": "Your receipt",
                "fromName": "Shop",
                "fromEmail": "orders@shop.example",
                "html": "<p>Thanks for your order.</p>",
                "subscriptionType": "TRANSACTIONAL",
            },
        )
        email_id = created.json()["emailId"]
        await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=headers)

        accepted: dict[str, str] = {}
        gate = asyncio.Semaphore(64)

        async def send(i: int) -> None:
            to = f"r{i}@{domain}"
            body = {"emailId": email_id, "message": {"to": to, "sendId": f"scaling-{domain}-{i}"}}
            async with gate:
                for _ in range(60):
                    reply = await api.post("/marketing/v3/transactional/single-email/send", headers=headers, json=body)
                    if reply.status_code == 200:
                        accepted[to] = reply.json()["statusId"]
                        return
                    await asyncio.sleep(0.5)

        async def kill_the_busier_replicas() -> None:
            while len(accepted) < SENDS // 3:  # noqa: ASYNC110 - polling what the senders change
                await asyncio.sleep(0.1)
            for service, (_, stack_url) in SERVICES.items():
                replica = second_replicas[service]
                stack_done = await asyncio.to_thread(records_handled, stack_url, service)
                replica_done = await asyncio.to_thread(records_handled, replica.url, service)
                if replica_done >= stack_done:
                    replica.kill()
                    killed[service] = f"second replica ({replica_done:.0f} records handled vs {stack_done:.0f})"
                else:
                    await asyncio.to_thread(kill_9, service)
                    killed[service] = f"stack's process ({stack_done:.0f} records handled vs {replica_done:.0f})"

        started = time.monotonic()
        await asyncio.gather(*(send(i) for i in range(SENDS)), kill_the_busier_replicas())
        accept_seconds = time.monotonic() - started

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            got = (await sink.get("/api/messages", params={"domain": domain, "envelope_only": 1})).json()
            if len(got) >= SENDS:
                break
            await asyncio.sleep(2)
        await asyncio.sleep(10)  # a duplicate would arrive now
        got = (await sink.get("/api/messages", params={"domain": domain, "envelope_only": 1})).json()
        delivered_seconds = time.monotonic() - started
        print(f"accepted after {accept_seconds:.0f} s; {len(got)} arrived after {delivered_seconds:.0f} s; {killed}")

        async def status_of(status_id: str) -> tuple[str, str]:
            async with gate:  # the client's pool holds 100 connections: 5,000 at once time out waiting
                view = (await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=headers)).json()
            return view.get("status"), view.get("sendResult")

        final: dict[str, tuple[str, str]] = {}
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            pending = [s for s in accepted.values() if final.get(s) != ("COMPLETE", "SENT")]
            for status_id, status in zip(pending, await asyncio.gather(*map(status_of, pending)), strict=True):
                final[status_id] = status
            if not pending:
                break
            await asyncio.sleep(5)
        statuses = collections.Counter(final.values())

    copies = collections.Counter(r for m in got for r in m["rcpt_tos"])
    missing = sorted(set(accepted) - set(copies))
    duplicated = {r: n for r, n in copies.items() if n > 1}
    by_ip = collections.defaultdict(list)
    for m in got:
        by_ip[m["peer"]].append(datetime.fromisoformat(m["received_at"]).timestamp())
    busiest = {ip: max_in_one_second(times) for ip, times in by_ip.items()}
    report = {
        "sends": SENDS,
        "accepted": len(accepted),
        "killed": killed,
        "all_accepted_after_s": round(accept_seconds, 1),
        "all_delivered_after_s": round(delivered_seconds, 1),
        "arrived": len(copies),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "statuses": {f"{s}/{r}": n for (s, r), n in statuses.items()},
        "most_messages_in_one_second_by_ip": busiest,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))

    assert len(accepted) == SENDS
    assert missing == [], f"{len(missing)} accepted sends never arrived, e.g. {missing[:5]}"
    # The sender's stated window (docs/sender-notes.md): a message the sink accepted whose delivery
    # record was not yet written when its sender was killed is sent again, at most one per slot.
    assert len(duplicated) <= 10 and set(duplicated.values()) <= {2}, duplicated
    assert statuses == {("COMPLETE", "SENT"): SENDS}, statuses
    # GCRA: no one-second window holds more than limit + 1 grants; 10 % for the sink's clock.
    assert all(n <= RATE_PER_IP_AND_SITE * 1.1 + 1 for n in busiest.values()), busiest
