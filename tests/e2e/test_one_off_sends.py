"""One-off sends of an email to many contacts, through the whole stack: contacts set up with the
contacts API, one HTTP call for the send, the fan-out process, the renderer, the sender, the
mail sink, and the progress figures from the recipients' statuses."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
ONE_OFF = "/mailstream/v1/one-off-sends"
SINK = "http://127.0.0.1:8025"


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def make_email(api: httpx.AsyncClient, key: str, subscription: str) -> int:
    html = "<p>Hello {{ contact.firstname|default('there') }}, our terms change.</p>"
    if subscription == "MARKETING":
        html += '<p><a href="{{ unsubscribe_link }}">Unsubscribe</a></p>'
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(key),
        json={
            "name": f"one-off {subscription}",
            "subject": "Our terms of service change",
            "fromEmail": "legal@shop.example",
            "html": html,
            "subscriptionType": subscription,
        },
    )
    assert created.status_code == 201, created.text
    return created.json()["emailId"]


async def put_contacts(api: httpx.AsyncClient, key: str, contacts: dict[str, dict]) -> None:
    gate = asyncio.Semaphore(16)

    async def one(address: str, body: dict) -> None:
        async with gate:
            reply = await api.put(f"/mailstream/v1/contacts/{address}", headers=auth(key), json=body)
            assert reply.status_code == 200, reply.text

    await asyncio.gather(*(one(a, b) for a, b in contacts.items()))


def population(domain: str, n: int) -> tuple[dict[str, dict], set[str], set[str]]:
    """n contacts: a third unsubscribed or quarantined, a tenth hard-bounced (suppressed), the
    rest subscribed. Returns them and the addresses a TRANSACTIONAL and a MARKETING email reach."""
    contacts, transactional, marketing = {}, set(), set()
    for i in range(n):
        address = f"c{i:05d}@{domain}"
        body: dict = {"properties": {"firstname": f"F{i}"}, "subscriptionStatus": "SUBSCRIBED"}
        if i % 6 == 0:
            body["subscriptionStatus"] = "UNSUBSCRIBED"
        elif i % 6 == 3:
            body["quarantined"] = True
        if i % 10 == 1:
            body["bounced"] = True
        contacts[address] = body
        if not body.get("bounced"):
            transactional.add(address)
            if body["subscriptionStatus"] == "SUBSCRIBED" and not body.get("quarantined"):
                marketing.add(address)
    return contacts, transactional, marketing


async def arrived(sink: httpx.AsyncClient, domain: str) -> collections.Counter:
    reply = await sink.get("/api/messages", params={"domain": domain, "envelope_only": 1}, timeout=60)
    reply.raise_for_status()
    return collections.Counter(r for m in reply.json() for r in m["rcpt_tos"] if r.endswith("@" + domain))


async def wait_done(api: httpx.AsyncClient, key: str, one_off_id: str, within: float = 300) -> dict:
    """The send once its fan-out ended and no accepted recipient is pending any more."""
    deadline = time.monotonic() + within
    while True:
        view = (await api.get(f"{ONE_OFF}/{one_off_id}", headers=auth(key))).json()
        if view["state"] in ("DONE", "CANCELED") and view["progress"]["pending"] == 0:
            return view
        assert time.monotonic() < deadline, f"not done within {within} s: {view}"
        await asyncio.sleep(1)


async def wait_arrived(sink: httpx.AsyncClient, domain: str, count: int, within: float = 120) -> collections.Counter:
    deadline = time.monotonic() + within
    while True:
        got = await arrived(sink, domain)
        if sum(got.values()) >= count or time.monotonic() > deadline:
            return got
        await asyncio.sleep(1)


def assert_figures_add_up(progress: dict) -> None:
    assert progress["accepted"] + progress["skipped"]["total"] == progress["targeted"], progress
    assert progress["sent"] + progress["failed"] + progress["pending"] == progress["accepted"], progress
    assert sum(progress["skipped"]["byReason"].values()) == progress["skipped"]["total"], progress


@pytest.fixture
async def sink(stack):
    async with httpx.AsyncClient(base_url=SINK, timeout=30) as client:
        yield client


@pytest.mark.parametrize("subscription", ["TRANSACTIONAL", "MARKETING"])
async def test_a_one_off_send_reaches_exactly_the_right_contacts_once(api, sink, new_account, subscription):
    key = new_account("one-off")
    domain = f"oneoff-{uuid.uuid4().hex[:8]}.example"
    contacts, transactional, marketing = population(domain, 1000)
    expected = transactional if subscription == "TRANSACTIONAL" else marketing
    await put_contacts(api, key, contacts)
    email_id = await make_email(api, key, subscription)

    created = await api.post(ONE_OFF, headers=auth(key), json={"emailId": email_id, "audience": {"allContacts": True}})
    assert created.status_code == 201, created.text
    assert created.json()["state"] in ("QUEUED", "SENDING", "DONE")
    view = await wait_done(api, key, created.json()["id"])
    got = await wait_arrived(sink, domain, len(expected))
    await asyncio.sleep(5)  # a duplicate would arrive now
    got = await arrived(sink, domain)

    assert set(got) == expected, (len(set(got) - expected), len(expected - set(got)))
    assert set(got.values()) == {1}, {a: n for a, n in got.items() if n > 1}
    p = view["progress"]
    assert view["state"] == "DONE" and p["targeted"] == 1000 and p["processed"] == 1000
    assert p["accepted"] == p["sent"] == len(expected), p
    bounced = sum(1 for c in contacts.values() if c.get("bounced"))
    assert p["skipped"]["byReason"]["bounced"] == bounced
    if subscription == "MARKETING":
        unsubscribed = sum(
            1 for c in contacts.values() if not c.get("bounced") and c["subscriptionStatus"] != "SUBSCRIBED"
        )
        quarantined = sum(1 for c in contacts.values() if not c.get("bounced") and c.get("quarantined"))
        assert p["skipped"]["byReason"]["unsubscribed"] == unsubscribed
        assert p["skipped"]["byReason"]["quarantined"] == quarantined
    assert_figures_add_up(p)

    # Each recipient has its own status, named by its own sendId.
    listed = (await api.get(ONE_OFF, headers=auth(key))).json()["results"]
    assert [s["id"] for s in listed] == [view["id"]]


async def test_a_filter_or_a_list_picks_the_recipients(api, sink, new_account):
    key = new_account("one-off-filter")
    domain = f"oneoff-{uuid.uuid4().hex[:8]}.example"
    plans = {"pro": 4, "team": 3, "free": 5}
    contacts = {}
    for plan, n in plans.items():
        for i in range(n):
            props = {"plan": plan, **({"vip": "yes"} if i == 0 else {})}
            contacts[f"{plan}{i}@{domain}"] = {"properties": props}
    contacts[f"noplan@{domain}"] = {"properties": {}}
    await put_contacts(api, key, contacts)
    email_id = await make_email(api, key, "TRANSACTIONAL")

    async def send(audience: dict) -> dict:
        reply = await api.post(ONE_OFF, headers=auth(key), json={"emailId": email_id, "audience": audience})
        assert reply.status_code == 201, reply.text
        return await wait_done(api, key, reply.json()["id"])

    eq = await send({"filters": [{"property": "plan", "operator": "EQ", "value": "pro"}]})
    assert eq["progress"]["targeted"] == eq["progress"]["sent"] == 4
    both = await send(
        {
            "filters": [
                {"property": "plan", "operator": "IN", "values": ["team", "free"]},
                {"property": "vip", "operator": "HAS_PROPERTY"},
            ]
        }
    )
    assert both["progress"]["targeted"] == both["progress"]["sent"] == 2
    listed = await send({"addresses": [f"Listed1@{domain}", f"listed1@{domain}", f"listed2@{domain}"]})
    assert listed["progress"]["targeted"] == listed["progress"]["sent"] == 2  # one address, once

    got = await wait_arrived(sink, domain, 8)
    expected = {f"pro{i}@{domain}" for i in range(4)} | {f"team0@{domain}", f"free0@{domain}"}
    expected |= {f"listed1@{domain}", f"listed2@{domain}"}
    assert {a.lower() for a in got} == expected and set(got.values()) == {1}


async def test_a_repeated_create_with_the_same_idempotency_key_sends_nothing_again(api, sink, new_account):
    key = new_account("one-off-idem")
    domain = f"oneoff-{uuid.uuid4().hex[:8]}.example"
    email_id = await make_email(api, key, "TRANSACTIONAL")
    body = {"emailId": email_id, "audience": {"addresses": [f"r{i}@{domain}" for i in range(20)]}}
    first = await api.post(ONE_OFF, headers={**auth(key), "Idempotency-Key": "terms-2026"}, json=body)
    assert first.status_code == 201, first.text
    again = await api.post(ONE_OFF, headers=auth(key), json={**body, "idempotencyKey": "terms-2026"})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"], again.text
    await wait_done(api, key, first.json()["id"])
    later = await api.post(ONE_OFF, headers={**auth(key), "Idempotency-Key": "terms-2026"}, json=body)
    assert later.status_code == 200 and later.json()["id"] == first.json()["id"]

    await wait_arrived(sink, domain, 20)
    await asyncio.sleep(5)
    got = await arrived(sink, domain)
    assert len(got) == 20 and set(got.values()) == {1}, got
    listed = (await api.get(ONE_OFF, headers=auth(key))).json()["results"]
    assert len(listed) == 1


async def test_a_canceled_one_off_send_sends_nothing_more(api, sink, new_account):
    key = new_account("one-off-cancel")
    domain = f"oneoff-{uuid.uuid4().hex[:8]}.example"
    email_id = await make_email(api, key, "TRANSACTIONAL")
    send_at = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0).isoformat()
    body = {"emailId": email_id, "audience": {"addresses": [f"r{i}@{domain}" for i in range(50)]}, "sendAt": send_at}
    created = await api.post(ONE_OFF, headers=auth(key), json=body)
    assert created.status_code == 201 and created.json()["state"] == "SCHEDULED", created.text
    canceled = await api.post(f"{ONE_OFF}/{created.json()['id']}/cancel", headers=auth(key))
    assert canceled.status_code == 200, canceled.text
    view = canceled.json()
    assert view["state"] == "CANCELED"
    assert view["progress"]["skipped"]["byReason"]["canceled"] == 50
    assert_figures_add_up(view["progress"])
    again = await api.post(f"{ONE_OFF}/{created.json()['id']}/cancel", headers=auth(key))
    assert again.status_code == 200 and again.json()["state"] == "CANCELED"

    # A scheduled one beside it goes out at its sendAt; once done, it cannot be canceled.
    other = await api.post(ONE_OFF, headers=auth(key), json={**body, "audience": {"addresses": [f"late@{domain}"]}})
    assert other.json()["state"] == "SCHEDULED"
    done = await wait_done(api, key, other.json()["id"], within=60)
    assert done["progress"]["sent"] == 1
    assert datetime.fromisoformat(done["startedAt"]) >= datetime.fromisoformat(send_at)
    late = await api.post(f"{ONE_OFF}/{other.json()['id']}/cancel", headers=auth(key))
    assert late.status_code == 409 and late.json()["category"] == "CONFLICT"

    await asyncio.sleep(3)
    assert set(await arrived(sink, domain)) == {f"late@{domain}"}


async def test_bad_requests_answer_in_hubspots_error_shape(api, new_account):
    key = new_account("one-off-bad")
    email_id = await make_email(api, key, "TRANSACTIONAL")
    cases = [
        ({"emailId": email_id, "audience": {}}, 400, "VALIDATION_ERROR"),
        ({"emailId": email_id, "audience": {"addresses": ["not an address"]}}, 400, "VALIDATION_ERROR"),
        ({"emailId": 999_999_999, "audience": {"allContacts": True}}, 404, "OBJECT_NOT_FOUND"),
    ]
    for body, status, category in cases:
        reply = await api.post(ONE_OFF, headers=auth(key), json=body)
        assert reply.status_code == status, reply.text
        assert reply.json()["status"] == "error" and reply.json()["category"] == category
        assert reply.json()["correlationId"]
    missing = await api.get(f"{ONE_OFF}/{uuid.uuid4()}", headers=auth(key))
    assert missing.status_code == 404 and missing.json()["category"] == "OBJECT_NOT_FOUND"
    other = new_account("one-off-other")
    mine = await api.post(
        ONE_OFF, headers=auth(key), json={"emailId": email_id, "audience": {"addresses": ["a@b.example"]}}
    )
    assert (await api.get(f"{ONE_OFF}/{mine.json()['id']}", headers=auth(other))).status_code == 404
    assert "/mailstream/v1/one-off-sends/{one_off_send_id}/cancel" in (await api.get("/openapi.json")).json()["paths"]
