"""A one-off send to 10,000 contacts through kill -9 of the fan-out and of the renderer (issue 23).

10,000 contacts (a third unsubscribed or quarantined, a tenth hard-bounced), half in group T and
half in group M: a TRANSACTIONAL one-off send to group T and a MARKETING one to group M start
together. While the fan-out is in the middle of them it is killed with SIGKILL and restarted
(with small batches, so that the kill lands inside a batch's transaction); once mail arrives the
renderer is killed and restarted. Afterwards exactly the right contacts have arrived at the sink,
each once, and each send's progress figures add up.
"""

from __future__ import annotations

import asyncio
import collections
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from stack_processes import kill_9

pytestmark = [pytest.mark.faults, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "deploy/local/stack.sh"
ONE_OFF = "/mailstream/v1/one-off-sends"
CONTACTS = 10_000
SMALL_BATCHES = {"MAILSTREAM_FANOUT_BATCH_SIZE": "100"}


def stack_sh(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [str(STACK), *args], check=True, timeout=300, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def population(domain: str) -> tuple[dict[str, dict], set[str], set[str]]:
    """The contacts, and whom the TRANSACTIONAL (group T) and MARKETING (group M) sends reach."""
    contacts, transactional, marketing = {}, set(), set()
    for i in range(CONTACTS):
        address = f"c{i:05d}@{domain}"
        group = "T" if i % 2 == 0 else "M"
        body: dict = {"properties": {"group": group, "firstname": f"F{i}"}, "subscriptionStatus": "SUBSCRIBED"}
        if i % 3 == 0 and i % 4 < 2:
            body["subscriptionStatus"] = "UNSUBSCRIBED"
        elif i % 3 == 0:
            body["quarantined"] = True
        if i % 10 in (1, 4):
            body["bounced"] = True
        contacts[address] = body
        if body.get("bounced"):
            continue
        if group == "T":
            transactional.add(address)
        elif body["subscriptionStatus"] == "SUBSCRIBED" and not body.get("quarantined"):
            marketing.add(address)
    return contacts, transactional, marketing


async def put_contacts(api: httpx.AsyncClient, key: str, contacts: dict[str, dict]) -> None:
    gate = asyncio.Semaphore(24)

    async def one(address: str, body: dict) -> None:
        async with gate:
            reply = await api.put(f"/mailstream/v1/contacts/{address}", headers=auth(key), json=body)
            assert reply.status_code == 200, reply.text

    await asyncio.gather(*(one(a, b) for a, b in contacts.items()))


async def make_email(api: httpx.AsyncClient, key: str, subscription: str) -> int:
    html = "<p>Hello {{ contact.firstname }}, our terms change.</p>"
    if subscription == "MARKETING":
        html += '<p><a href="{{ unsubscribe_link }}">Unsubscribe</a></p>'
    body = {
        "name": f"terms {subscription}",
        "subject": "Terms of service",
        "fromEmail": "legal@shop.example",
        "html": html,
        "subscriptionType": subscription,
    }
    reply = await api.post("/mailstream/v1/emails", headers=auth(key), json=body)
    assert reply.status_code == 201, reply.text
    return reply.json()["emailId"]


async def view(api: httpx.AsyncClient, key: str, one_off_id: str) -> dict:
    while True:
        try:
            reply = await api.get(f"{ONE_OFF}/{one_off_id}", headers=auth(key))
            if reply.status_code == 200:
                return reply.json()
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)


async def arrived(sink: httpx.AsyncClient, domain: str) -> collections.Counter:
    reply = await sink.get("/api/messages", params={"domain": domain, "envelope_only": 1}, timeout=120)
    return collections.Counter(r for m in reply.json() for r in m["rcpt_tos"] if r.endswith("@" + domain))


@pytest.fixture
async def small_batches(stack):
    await asyncio.to_thread(stack_sh, "restart", "fanout", env=SMALL_BATCHES)
    yield
    await asyncio.to_thread(stack_sh, "up")  # whatever happened, everything runs with its normal settings
    await asyncio.to_thread(stack_sh, "restart", "fanout")


async def test_each_contact_gets_its_one_off_send_once_through_kill_9_of_the_fan_out_and_the_renderer(
    new_account, small_batches
):
    key = new_account("one-off-faults")
    domain = f"oneoff-faults-{uuid.uuid4().hex[:8]}.example"
    contacts, transactional, marketing = population(domain)
    async with (
        httpx.AsyncClient(base_url="http://127.0.0.1:8080", timeout=60) as api,
        httpx.AsyncClient(base_url="http://127.0.0.1:8025", timeout=60) as sink,
    ):
        await put_contacts(api, key, contacts)
        sends = {}
        for subscription, group in (("TRANSACTIONAL", "T"), ("MARKETING", "M")):
            email_id = await make_email(api, key, subscription)
            audience = {"filters": [{"property": "group", "operator": "EQ", "value": group}]}
            reply = await api.post(ONE_OFF, headers=auth(key), json={"emailId": email_id, "audience": audience})
            assert reply.status_code == 201, reply.text
            sends[subscription] = reply.json()["id"]

        # kill -9 of the fan-out in the middle of the fan-out
        deadline = time.monotonic() + 120
        while True:
            t = await view(api, key, sends["TRANSACTIONAL"])
            if t["progress"]["processed"] >= 1000:
                break
            assert time.monotonic() < deadline, t
            await asyncio.sleep(0.05)
        await asyncio.to_thread(kill_9, "fanout")
        at_kill = (await view(api, key, sends["TRANSACTIONAL"]))["progress"]["processed"]
        await asyncio.to_thread(stack_sh, "restart", "fanout", env=SMALL_BATCHES)

        # kill -9 of the renderer once mail arrives
        deadline = time.monotonic() + 180
        while sum((await arrived(sink, domain)).values()) < 1000:
            assert time.monotonic() < deadline, "no mail arrived"
            await asyncio.sleep(0.5)
        await asyncio.to_thread(kill_9, "renderer")
        await asyncio.to_thread(stack_sh, "restart", "renderer")

        expected = transactional | marketing
        deadline = time.monotonic() + 600
        while True:
            views = {s: await view(api, key, i) for s, i in sends.items()}
            if all(v["state"] == "DONE" and v["progress"]["pending"] == 0 for v in views.values()):
                break
            assert time.monotonic() < deadline, views
            await asyncio.sleep(2)
        deadline = time.monotonic() + 120
        while sum((await arrived(sink, domain)).values()) < len(expected):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(2)
        await asyncio.sleep(10)  # a duplicate would arrive now
        got = await arrived(sink, domain)

    print(
        f"\nkilled the fan-out at {at_kill} of {len(contacts) // 2} recipients fanned out; expected {len(expected)},"
        f" arrived {len(got)}, duplicated {sum(1 for n in got.values() if n > 1)}"
    )
    assert 0 < at_kill < CONTACTS // 2, "the fan-out was not killed in the middle"
    missing, extra = expected - set(got), set(got) - expected
    assert not missing and not extra, (len(missing), sorted(missing)[:5], len(extra), sorted(extra)[:5])
    assert set(got.values()) == {1}, {a: n for a, n in got.items() if n > 1}
    for subscription, v in views.items():
        p = v["progress"]
        reached = transactional if subscription == "TRANSACTIONAL" else marketing
        assert p["targeted"] == p["processed"] == CONTACTS // 2, p
        assert p["accepted"] == p["sent"] == len(reached), (subscription, p)
        assert p["accepted"] + p["skipped"]["total"] == p["targeted"], p
        assert p["sent"] + p["failed"] + p["pending"] == p["accepted"], p
