"""The email events listing after real sends and opens, contacts listed and deleted (through
HubSpot's SDK), and a hard-bounced address (its suppression naming the BOUNCE event) unbounced so
that the next send is delivered."""

import asyncio
import email
import os
import re
import time
from email.policy import default

import httpx
import pytest

pytestmark = pytest.mark.e2e
GATEWAY = os.environ.get("MAILSTREAM_TEST_GATEWAY_URL", "http://127.0.0.1:8080")
TRACKER = "http://127.0.0.1:8090"
SEND = "/marketing/v3/transactional/single-email/send"
EVENTS = "/email/public/v1/events"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def auth(key):
    return {"Authorization": f"Bearer {key}"}


async def converted_email(api, key) -> int:
    created = await api.post(
        "/mailstream/v1/emails",
        headers=auth(key),
        json={
            "name": "Receipt",
            "subject": "Your receipt",
            "fromEmail": "orders@shop.example",
            "html": '<p>Thanks. <a href="https://shop.example/orders">Your order</a></p>',
            "subscriptionType": "TRANSACTIONAL",
        },
    )
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    converted = await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=auth(key))
    assert converted.status_code == 200, converted.text
    return email_id


async def send(api, key, email_id, to) -> dict:
    reply = await api.post(SEND, headers=auth(key), json={"emailId": email_id, "message": {"to": to}})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def complete(api, key, status_id, within=30.0) -> dict:
    deadline = time.monotonic() + within
    while True:
        view = (await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=auth(key))).json()
        if view["status"] == "COMPLETE" or time.monotonic() > deadline:
            return view
        await asyncio.sleep(0.2)


async def events_of(api, key, to, *, until, within=30.0, **params) -> list[dict]:
    deadline = time.monotonic() + within
    while True:
        page = (await api.get(EVENTS, headers=auth(key), params={"recipient": to, **params})).json()
        if until({e["type"] for e in page["events"]}) or time.monotonic() > deadline:
            return page["events"]
        await asyncio.sleep(0.2)


async def test_events_of_real_sends_and_opens_are_listed_paged_and_filtered(api, new_account, sink, unique_address):
    key = new_account("events")
    email_id = await converted_email(api, key)
    to = unique_address()
    accepted = await send(api, key, email_id, to)
    (received,) = await sink.wait_for(to)
    html = email.message_from_string(received["data"], policy=default).get_body(("html",)).get_content()
    (pixel,) = re.findall(rf"{re.escape(TRACKER)}/o/[A-Za-z0-9_.-]+", html)
    async with httpx.AsyncClient(base_url=TRACKER, timeout=10) as tracker:
        assert (await tracker.get(pixel.removeprefix(TRACKER), headers={"User-Agent": BROWSER})).status_code == 200
    wanted = {"PROCESSED", "SENT", "DELIVERED", "OPEN"}
    events = await events_of(api, key, to, until=lambda types: wanted <= types)
    assert {e["type"] for e in events} == wanted, events
    for e in events:
        assert e["recipient"] == to and e["emailId"] == email_id and isinstance(e["created"], int)
    assert [e["created"] for e in events] == sorted((e["created"] for e in events), reverse=True)  # newest first

    status = await complete(api, key, accepted["statusId"])
    sent_id = status["eventId"]["id"]
    (sent,) = [e for e in events if e["type"] == "SENT"]
    assert sent["id"] == sent_id  # the send status's eventId is the SENT event
    one = await api.get(f"{EVENTS}/{sent['created']}/{sent_id}", headers=auth(key))
    assert one.status_code == 200 and one.json() == sent
    assert (await api.get(f"{EVENTS}/{sent['created'] + 1}/{sent_id}", headers=auth(key))).status_code == 404
    other = new_account("events-other")
    assert (await api.get(f"{EVENTS}/{sent['created']}/{sent_id}", headers=auth(other))).status_code == 404

    opens = (await api.get(EVENTS, headers=auth(key), params={"recipient": to, "eventType": "OPEN"})).json()
    assert [e["type"] for e in opens["events"]] == ["OPEN"] and opens["hasMore"] is False
    walked, offset = [], None
    while True:
        params = {"recipient": to, "limit": 1, **({"offset": offset} if offset else {})}
        page = (await api.get(EVENTS, headers=auth(key), params=params)).json()
        walked += page["events"]
        if not page["hasMore"]:
            break
        offset = page["offset"]
    assert walked == events
    later = (await api.get(EVENTS, headers=auth(key), params={"startTimestamp": sent["created"] + 3_600_000})).json()
    assert later == {"events": [], "hasMore": False}
    window = {"startTimestamp": sent["created"], "endTimestamp": sent["created"], "eventType": "SENT"}
    assert [e["id"] for e in (await api.get(EVENTS, headers=auth(key), params=window)).json()["events"]] == [sent_id]
    bad = await api.get(EVENTS, headers=auth(key), params={"eventType": "EXPLODED"})
    assert bad.status_code == 400 and bad.json()["category"] == "VALIDATION_ERROR"


async def test_contacts_are_listed_in_pages_and_deleted_through_the_hubspot_sdk(api, new_account, unique_address):
    try:
        from hubspot import Client
    except ImportError:
        pytest.fail("hubspot-api-client is not installed: pip install -e 'services/api-gateway[test]'")
    key = new_account("contacts")
    addresses = sorted(unique_address() for _ in range(3))
    for i, address in enumerate(addresses):
        reply = await api.put(
            f"/mailstream/v1/contacts/{address}", headers=auth(key), json={"properties": {"firstname": f"N{i}"}}
        )
        assert reply.status_code == 200, reply.text
    client = Client.create(access_token=key, host=GATEWAY)
    contacts = client.crm.contacts.basic_api
    first = await asyncio.to_thread(contacts.get_page, limit=2)
    assert [c.id for c in first.results] == addresses[:2]
    assert first.results[0].properties["firstname"] == "N0" and first.results[0].properties["email"] == addresses[0]
    second = await asyncio.to_thread(contacts.get_page, limit=2, after=first.paging.next.after)
    assert [c.id for c in second.results] == addresses[2:] and second.paging is None

    await asyncio.to_thread(contacts.archive, contact_id=addresses[1])
    assert (await api.get(f"/mailstream/v1/contacts/{addresses[1]}", headers=auth(key))).status_code == 404
    listed = (await api.get("/crm/v3/objects/contacts", headers=auth(key))).json()
    assert [c["id"] for c in listed["results"]] == [addresses[0], addresses[2]]
    again = await api.delete(f"/crm/v3/objects/contacts/{addresses[1]}", headers=auth(key))
    assert again.status_code == 404 and again.json()["category"] == "OBJECT_NOT_FOUND"


async def test_a_hard_bounced_address_is_unbounced_with_its_reason_and_the_next_send_is_delivered(
    api, new_account, sink, unique_address
):
    key = new_account("unbounce")
    email_id = await converted_email(api, key)
    to = unique_address()
    suppressions = f"/mailstream/v1/suppressions/{to}"
    assert (await api.get(suppressions, headers=auth(key))).status_code == 404  # nothing known yet
    assert (await sink.client.put(f"/api/rejects/{to}", json={"reply": "550 5.1.1 no such user"})).status_code == 200
    try:
        bounced = await complete(api, key, (await send(api, key, email_id, to))["statusId"])
        assert bounced["status"] == "COMPLETE" and bounced["sendResult"] != "SENT", bounced
        deadline = time.monotonic() + 20
        while "BOUNCED" not in (await api.get(suppressions, headers=auth(key))).json().get("suppressions", []):
            assert time.monotonic() < deadline, "the hard bounce did not suppress the address"
            await asyncio.sleep(0.2)
    finally:
        await sink.client.delete(f"/api/rejects/{to}")
    assert (await send(api, key, email_id, to))["sendResult"] == "PREVIOUSLY_BOUNCED"
    (current,) = (await api.get(suppressions, headers=auth(key))).json()["current"]
    cause = current["causedBy"]  # the bounced message and its BOUNCE event (checked against the events below)
    assert current["reason"] == "BOUNCED" and cause["type"] == "BOUNCE" and cause["messageId"] == current["messageId"]

    missing = await api.post(
        f"/mailstream/v1/suppressions/{unique_address()}/unbounce", headers=auth(key), json={"reason": "x"}
    )
    assert missing.status_code == 404
    no_reason = await api.post(f"{suppressions}/unbounce", headers=auth(key), json={})
    assert no_reason.status_code == 400
    lifted = await api.post(f"{suppressions}/unbounce", headers=auth(key), json={"reason": "mailbox restored"})
    assert lifted.status_code == 202, lifted.text
    assert lifted.json()["suppression"] == "BOUNCED" and lifted.json()["requestedBy"].startswith("api-key:")
    deadline = time.monotonic() + 20
    while True:
        view = (await api.get(suppressions, headers=auth(key))).json()
        # until applied (while the bounce is current, the history shows it as the tracker's ADD)
        if not view["suppressions"] or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert view["suppressions"] == [] and view["current"] == []
    (change,) = view["history"]
    assert (change["action"], change["suppression"], change["changed"], change["reason"]) == (
        "REMOVE",
        "BOUNCED",
        ["BOUNCED"],
        "mailbox restored",
    )
    assert change["requestedBy"] == lifted.json()["requestedBy"] and change["eventId"] == lifted.json()["eventId"]

    delivered = await send(api, key, email_id, to)
    assert delivered["status"] == "PENDING", delivered
    assert len(await sink.wait_for(to)) == 1
    assert (await complete(api, key, delivered["statusId"]))["sendResult"] == "SENT"
    events = await events_of(api, key, to, until=lambda types: {"BOUNCE", "UNBOUNCE", "DELIVERED"} <= types)
    assert {"BOUNCE", "UNBOUNCE", "DELIVERED"} <= {e["type"] for e in events}
    (bounce,) = [e for e in events if e["type"] == "BOUNCE"]
    assert (bounce["id"], bounce["hmid"]) == (cause["eventId"], cause["messageId"])
    (unbounce,) = [e for e in events if e["type"] == "UNBOUNCE"]
    assert unbounce["note"] == "mailbox restored" and unbounce["id"] == lifted.json()["eventId"]
