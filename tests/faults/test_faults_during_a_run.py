"""Faults during one run of 5,000 sends through the whole stack (issue 9).

A well-behaved client sends 5,000 single sends at a steady rate, each with its own sendId, and
retries a send (same sendId) whenever it is not accepted: a 503, a connection refused while the
gateway restarts. Meanwhile the faults happen one at a time: kill -9 of the gateway, the
renderer, the sender and the tracker (each restarted), a Kafka broker restart, PostgreSQL
stopped for 20 s, the sink down for 30 s, then answering 421 for 20 s.

Afterwards every send must have arrived at the sink exactly once and its status must be
COMPLETE / SENT. The stated exception is the sender's duplicate window (docs/sender-notes.md):
a message the receiver accepted whose delivery record was not yet written when the sender was
killed is sent again, at most one per connection slot; the test reports how many.

The counts are printed (pytest -s) and written to .mailstream/reliability/faults.json for
docs/reliability.md. The faults touch the shared stack, so these tests run last (conftest.py)
and leave every component running with its normal settings.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from stack_processes import kill_9

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy/local/stack.sh"
REPORT = ROOT / ".mailstream/reliability/faults.json"
SENDS = 5000
RATE = 16.0  # sends offered per second: the run (~310 s) outlasts the faults below (~290 s)
# Deferred mail is retried after seconds, not the shipped 20 minutes, so the run ends in minutes.
SHORT_RETRIES = {
    "MAILSTREAM_SENDER_RETRY_BASE_SECONDS": "2",
    "MAILSTREAM_SENDER_RETRY_MAX_INTERVAL_SECONDS": "8",
}


def stack_sh(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [str(STACK), *args],
        check=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
    )


def script(name: str, action: str) -> None:
    subprocess.run([str(ROOT / "deploy/local" / name), action], check=True, timeout=300, stdout=subprocess.DEVNULL)


@dataclass
class Phase:
    name: str
    started: float = 0.0
    ended: float = 0.0
    accepted: int = 0
    refused: collections.Counter = field(default_factory=collections.Counter)  # "503", "connection", ...


@dataclass
class Run:
    phases: list[Phase]
    accepted: dict[str, str] = field(default_factory=dict)  # recipient -> statusId
    unexpected: list[str] = field(default_factory=list)  # any answer a client could not retry

    @property
    def current(self) -> Phase:
        return self.phases[-1]


async def fault(run: Run, name: str, action, *args) -> None:
    """Runs one fault (blocking actions in a thread), recording its window."""
    phase = Phase(name, started=time.monotonic())
    run.phases.append(phase)
    await asyncio.to_thread(action, *args)
    phase.ended = time.monotonic()
    run.phases.append(Phase(f"after {name}", started=phase.ended))


def restart_after_kill(service: str) -> None:
    kill_9(service)
    stack_sh("restart", service, env=SHORT_RETRIES if service == "sender" else None)


def database_down_for(seconds: float) -> None:
    script("postgres.sh", "stop")
    time.sleep(seconds)
    script("postgres.sh", "start")


def kafka_restart() -> None:
    script("kafka.sh", "stop")
    script("kafka.sh", "start")


async def sink_mode(sink: httpx.AsyncClient, body: dict, seconds: float) -> None:
    (await sink.put("/api/mode", json=body)).raise_for_status()
    await asyncio.sleep(seconds)


async def send_all(api: httpx.AsyncClient, headers: dict, email_id: int, domain: str, run: Run) -> None:
    started = time.monotonic()
    pending = asyncio.Semaphore(200)  # at most this many sends waiting on an answer

    async def one(i: int) -> None:
        to = f"r{i}@{domain}"
        body = {"emailId": email_id, "message": {"to": to, "sendId": f"fault-run-{domain}-{i}"}}
        async with pending:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                phase = run.current
                try:
                    reply = await api.post("/marketing/v3/transactional/single-email/send", headers=headers, json=body)
                except httpx.TransportError as exc:
                    phase.refused[f"connection ({type(exc).__name__})"] += 1
                else:
                    if reply.status_code == 200:
                        phase.accepted += 1
                        run.accepted[to] = reply.json()["statusId"]
                        return
                    if reply.status_code != 503 or reply.json().get("category") is None:
                        run.unexpected.append(f"{to}: {reply.status_code} {reply.text[:200]}")
                        return
                    phase.refused["503"] += 1
                await asyncio.sleep(0.5)
            run.unexpected.append(f"{to}: not accepted within 300 s")

    tasks = []
    for i in range(SENDS):
        await asyncio.sleep(max(0.0, started + i / RATE - time.monotonic()))
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)


async def inject_faults(sink: httpx.AsyncClient, run: Run) -> None:
    await asyncio.sleep(10)
    for service in ("gateway", "renderer", "sender", "tracker"):
        await fault(run, f"kill -9 {service}, restart", restart_after_kill, service)
        await asyncio.sleep(15)
    await fault(run, "Kafka broker restart", kafka_restart)
    await asyncio.sleep(15)
    await fault(run, "PostgreSQL stopped for 20 s", database_down_for, 20)
    await asyncio.sleep(15)
    phase = Phase("sink down for 30 s", started=time.monotonic())
    run.phases.append(phase)
    await sink_mode(sink, {"down_for_seconds": 30}, 30)
    phase.ended = time.monotonic()
    run.phases.append(Phase("after sink down", started=phase.ended))
    await asyncio.sleep(10)
    phase = Phase("sink answers 421 for 20 s", started=time.monotonic())
    run.phases.append(phase)
    await sink_mode(sink, {"reply": "421 4.3.2 Service shutting down, try again later", "for_seconds": 20}, 20)
    phase.ended = time.monotonic()
    run.phases.append(Phase("after 421", started=phase.ended))


async def arrived(sink: httpx.AsyncClient, domain: str) -> list[dict]:
    reply = await sink.get("/api/messages", params={"domain": domain, "envelope_only": 1}, timeout=60)
    return reply.json()


async def statuses(api: httpx.AsyncClient, headers: dict, status_ids: list[str]) -> collections.Counter:
    gate = asyncio.Semaphore(20)

    async def one(status_id: str) -> tuple[str, str | None]:
        async with gate:
            view = (await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=headers)).json()
            return view.get("status"), view.get("sendResult")

    return collections.Counter(await asyncio.gather(*(one(s) for s in status_ids)))


def batches_read_again(since: str) -> dict[str, int]:
    """How often each consumer read a batch again (a failed batch, or, in the tracker, a batch its
    own transactions had already written), from its log lines since `since` (an ISO time)."""
    marks = {"renderer": "reading it again", "sender": "re-consuming it", "tracker": "already written"}
    counts = {}
    for service, mark in marks.items():
        lines = (ROOT / f".mailstream/logs/{service}.log").read_text(errors="replace").splitlines()
        counts[service] = sum(1 for line in lines if mark in line and line.partition('"ts": "')[2][:23] >= since)
    return counts


async def account_stats(api: httpx.AsyncClient, headers: dict) -> dict:
    return (await api.get("/mailstream/v1/stats", headers=headers)).json()


async def poll(fetch, done, *, within: float, every: float):
    """fetch() until done(result) or `within` seconds passed; returns the last result."""
    deadline = time.monotonic() + within
    while True:
        result = await fetch()
        if done(result) or time.monotonic() > deadline:
            return result
        await asyncio.sleep(every)


@pytest.fixture
async def short_retries(stack):
    await asyncio.to_thread(stack_sh, "restart", "sender", env=SHORT_RETRIES)
    yield
    # Whatever happened, every component runs again with its normal settings.
    await asyncio.to_thread(stack_sh, "up")
    await asyncio.to_thread(stack_sh, "restart", "sender")


async def test_every_accepted_send_arrives_once_through_the_faults(new_account, short_retries):
    domain = f"faults-{uuid.uuid4().hex[:8]}.example"
    headers = {"Authorization": f"Bearer {new_account('faults')}"}
    async with (
        httpx.AsyncClient(base_url="http://127.0.0.1:8080", timeout=30) as api,
        httpx.AsyncClient(base_url="http://127.0.0.1:8025", timeout=30) as sink,
    ):
        created = await api.post(
            "/mailstream/v1/emails",
            headers=headers,
            json={
                "name": "Fault run",
                "subject": "Order confirmation",
                "fromName": "Shop",
                "fromEmail": "orders@shop.example",
                "html": '<p>Thanks for your order. <a href="https://shop.example/orders">Your orders</a></p>',
                "subscriptionType": "TRANSACTIONAL",
            },
        )
        email_id = created.json()["emailId"]
        await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=headers)

        run = Run(phases=[Phase("no fault", started=time.monotonic())])
        started, started_at = time.monotonic(), datetime.now(UTC).isoformat(timespec="milliseconds")
        await asyncio.gather(send_all(api, headers, email_id, domain, run), inject_faults(sink, run))
        accept_seconds = time.monotonic() - started

        await poll(lambda: arrived(sink, domain), lambda got: len(got) >= SENDS, within=300, every=2)
        await asyncio.sleep(10)  # a duplicate would arrive now
        got = await arrived(sink, domain)
        copies = collections.Counter(r for m in got for r in m["rcpt_tos"])
        missing = sorted(set(run.accepted) - set(copies))
        duplicated = {r: n for r, n in copies.items() if n > 1}
        delivered_seconds = time.monotonic() - started

        final = await poll(
            lambda: statuses(api, headers, list(run.accepted.values())),
            lambda found: found == {("COMPLETE", "SENT"): SENDS},
            within=240,
            every=5,
        )
        counted = await poll(
            lambda: account_stats(api, headers),
            lambda stats: (stats.get("sent"), stats.get("delivered")) == (SENDS, SENDS),
            within=60,
            every=2,
        )

    report = {
        "sends": SENDS,
        "rate": RATE,
        "accepted": len(run.accepted),
        "unexpected_answers": run.unexpected[:20],
        "all_accepted_after_s": round(accept_seconds),
        "all_delivered_after_s": round(delivered_seconds),
        "arrived": len(copies),
        "missing": len(missing),
        "duplicated": len(duplicated),
        "statuses": {f"{s}/{r}": n for (s, r), n in final.items()},
        "statistics": {"sent": counted.get("sent"), "delivered": counted.get("delivered")},
        "batches_read_again": batches_read_again(started_at[:23]),
        "phases": [
            {
                "phase": p.name,
                "seconds": round((p.ended or p.started) - p.started, 1) if p.ended else None,
                "accepted": p.accepted,
                "refused": dict(p.refused),
            }
            for p in run.phases
        ],
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))

    assert run.unexpected == []  # every refusal was a retryable 503 or a refused connection
    assert len(run.accepted) == SENDS
    assert missing == [], f"{len(missing)} accepted sends never arrived, e.g. {missing[:5]}"
    # The sender's stated window (module docstring): at most one message per connection slot
    # (connection_limit 10 of the shipped [default] shaping), each sent twice, never more.
    assert len(duplicated) <= 10 and set(duplicated.values()) <= {2}, duplicated
    # Every status ends COMPLETE/SENT, and the statistics count each message once: they move in
    # the tracker's transaction with the status and the consumed offsets (docs/reliability.md).
    assert final == {("COMPLETE", "SENT"): SENDS}, final
    assert (counted.get("sent"), counted.get("delivered")) == (SENDS, SENDS), counted
    # While PostgreSQL was down the API answered 503 (HubSpot error shape) and accepted nothing.
    database = next(p for p in run.phases if p.name.startswith("PostgreSQL"))
    assert database.refused["503"] > 0
