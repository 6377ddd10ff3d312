"""Event webhooks through the running stack (issue 19): the endpoints API, the secret shown once and
its rotation's overlap, the test event, the events of real sends POSTed signed to a receiver on
loopback (verified with the snippet docs/webhooks.md publishes), the delivery log, and a replay.
The receiver's failures, the retry schedule and parking: tests/faults/test_webhook_faults.py."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import webhooks_kit as kit
from webhook_receiver import Receiver, verify

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]
auth = kit.auth


async def test_endpoints_crud_secret_shown_once_and_url_rules(api, new_account):
    key = new_account("wh-crud")
    created = await kit.create_webhook(api, key, "http://127.0.0.1:9/hook", description="orders")
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["eventTypes"] == [
        "delivered", "deferred", "bounced", "dropped", "opened", "clicked", "spam_report", "unsubscribed",
    ]  # fmt: skip
    assert created["enabled"] is True and created["pendingEvents"] == 0
    url = f"{kit.WEBHOOKS}/{created['id']}"
    shown = await api.get(url, headers=auth(key))
    assert shown.status_code == 200 and "secret" not in shown.json() and created["secret"] not in shown.text
    listed = await api.get(kit.WEBHOOKS, headers=auth(key))
    assert [w["id"] for w in listed.json()["results"]] == [created["id"]] and created["secret"] not in listed.text

    patched = await api.patch(url, headers=auth(key), json={"eventTypes": ["bounced", "dropped"], "enabled": False})
    assert patched.status_code == 200, patched.text
    assert patched.json()["eventTypes"] == ["bounced", "dropped"] and patched.json()["enabled"] is False
    assert patched.json()["description"] == "orders"

    for bad, why in [
        ({"url": "ftp://hooks.example.com/x"}, "http"),
        ({"url": "https://user:pw@hooks.example.com/"}, "password"),
        ({"url": "https://hooks.example.com/", "eventTypes": ["sent"]}, "eventTypes"),
        ({"url": "https://hooks.example.com/", "eventTypes": []}, "eventTypes"),
    ]:
        reply = await api.post(kit.WEBHOOKS, headers=auth(key), json=bad)
        assert reply.status_code == 400 and reply.json()["category"] == "VALIDATION_ERROR", reply.text
        assert why in reply.text
    other = new_account("wh-other")
    assert (await api.get(url, headers=auth(other))).status_code == 404
    assert (await api.delete(url, headers=auth(key))).status_code == 204
    assert (await api.get(url, headers=auth(key))).status_code == 404
    assert "/mailstream/v1/webhooks/{webhook_id}/replay" in (await api.get("/openapi.json")).json()["paths"]


async def test_a_test_event_is_signed_logged_and_a_rotation_overlaps(api, new_account):
    key = new_account("wh-test-event")
    receiver = await Receiver().start()
    try:
        created = await kit.create_webhook(api, key, receiver.url, enabled=False)  # paused: the test still goes
        first = created["secret"]
        receiver.secrets = [first]
        tested = await api.post(f"{kit.WEBHOOKS}/{created['id']}/test", headers=auth(key))
        assert tested.status_code == 200, tested.text
        view = tested.json()
        assert view["kind"] == "TEST" and view["outcome"] == "DELIVERED" and view["statusCode"] == 200
        post = receiver.posts[-1]
        assert post.verified and post.events[0]["event"] == "test" and post.events[0]["event_id"] == view["eventIds"][0]
        assert post.headers["Mailstream-Webhook-Id"] == created["id"]

        rotated = await api.post(
            f"{kit.WEBHOOKS}/{created['id']}/rotate-secret", headers=auth(key), json={"overlapSeconds": 600}
        )
        assert rotated.status_code == 200, rotated.text
        second = rotated.json()["secret"]
        assert (
            second != first and second not in (await api.get(f"{kit.WEBHOOKS}/{created['id']}", headers=auth(key))).text
        )
        await api.post(f"{kit.WEBHOOKS}/{created['id']}/test", headers=auth(key))
        post = receiver.posts[-1]
        header = post.headers["Mailstream-Signature"]
        assert header.count("v1=") == 2  # the overlap: both secrets sign
        assert verify(first, header, post.body) and verify(second, header, post.body)

        await api.post(f"{kit.WEBHOOKS}/{created['id']}/rotate-secret", headers=auth(key), json={"overlapSeconds": 0})
        third = (await api.get(f"{kit.WEBHOOKS}/{created['id']}", headers=auth(key))).json()
        assert third["previousSecretExpiresAt"] is None or third["previousSecretExpiresAt"] <= datetime.now(
            UTC
        ).isoformat().replace("+00:00", "Z")
        await api.post(f"{kit.WEBHOOKS}/{created['id']}/test", headers=auth(key))
        header = receiver.posts[-1].headers["Mailstream-Signature"]
        assert header.count("v1=") == 1 and not verify(second, header, receiver.posts[-1].body)

        await receiver.stop()  # a test event to a closed port fails, and says why
        failed = (await api.post(f"{kit.WEBHOOKS}/{created['id']}/test", headers=auth(key))).json()
        assert failed["outcome"] == "FAILED" and failed["statusCode"] is None and failed["error"]
        log = await kit.deliveries(api, key, created["id"])
        assert [d["outcome"] for d in log] == ["FAILED", "DELIVERED", "DELIVERED", "DELIVERED"]
        page = await kit.deliveries(api, key, created["id"], limit=1, before=log[0]["id"])
        assert [d["id"] for d in page] == [log[1]["id"]]
    finally:
        await receiver.stop()


async def test_events_of_sends_arrive_signed_once_and_a_replay_sends_them_again(api, new_account):
    key = new_account("wh-events")
    receiver = await Receiver().start()
    try:
        hook = await kit.create_webhook(api, key, receiver.url, eventTypes=["delivered"])
        receiver.secrets = [hook["secret"]]
        since = datetime.now(UTC) - timedelta(seconds=1)
        email_id = await kit.make_email(api, key)
        _, recipients = kit.addresses(5)
        await kit.send_to(api, key, email_id, recipients)
        got = await receiver.wait_events(5, within=60)
        assert len(got) == 5, receiver.events()
        assert {e["email"] for e in got} == set(recipients)
        assert all(e["event"] == "delivered" and e["custom_args"] == {} for e in got)
        assert all(p.verified for p in receiver.posts)
        assert all(p.headers["Mailstream-Event-Count"] == str(len(p.events)) for p in receiver.posts)
        ids = {e["event_id"] for e in got}

        log = await kit.deliveries(api, key, hook["id"])
        assert {i for d in log if d["outcome"] == "DELIVERED" for i in d["eventIds"]} == ids
        assert all(d["kind"] == "EVENTS" and d["statusCode"] == 200 for d in log)

        before = len(receiver.posts)
        reply = await api.post(
            f"{kit.WEBHOOKS}/{hook['id']}/replay", headers=auth(key), json={"since": since.isoformat()}
        )
        assert reply.status_code == 202, reply.text
        done = await kit.wait_replay_done(api, key, hook["id"], reply.json()["id"], within=60)
        assert done["state"] == "DONE" and done["events"] == 5, done
        again = await receiver.wait_events(10, within=30)
        assert len(again) == 10
        replayed = [e for p in receiver.posts[before:] for e in p.events]
        assert {e["event_id"] for e in replayed} == ids  # the same event ids
        assert all(p.headers.get("Mailstream-Replay-Id") == done["id"] and p.verified for p in receiver.posts[before:])
        await asyncio.sleep(1.5)
        assert sorted(receiver.ids().values()) == [2] * 5  # once live, once replayed; no more
        start = time.monotonic()
        reply = await api.post(
            f"{kit.WEBHOOKS}/{hook['id']}/replay",
            headers=auth(key),
            json={"since": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        )
        assert reply.status_code == 400 and time.monotonic() - start < 5
    finally:
        await receiver.stop()
