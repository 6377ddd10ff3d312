"""SendGrid's batches through the running stack (docs/sendgrid.md#batches): a canceled batch's
scheduled sends never reach the SMTP sink and end CANCELED; a paused batch's are held past their
send_at and delivered once the pause is removed; a Mail Send with a batch_id that is not the
account's is a 400; and SendGrid's official Python library drives the batch API. Sends are
scheduled 3 s ahead (send_at is whole seconds; the scheduler polls every 0.2 s)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from testkit import db_fetch

pytestmark = pytest.mark.e2e
GATEWAY = os.environ.get("MAILSTREAM_TEST_GATEWAY_URL", "http://127.0.0.1:8080")
SEND = "/v3/mail/send"
BATCH = "/v3/mail/batch"
SCHEDULED = "/v3/user/scheduled_sends"
AHEAD_S = 3


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def domain() -> str:
    return f"sgb-{uuid.uuid4().hex[:10]}.example.com"


def mail(recipients: list[str], **extra) -> dict:
    return {
        "personalizations": [{"to": [{"email": r}]} for r in recipients],
        "from": {"email": "orders@shop.example"},
        "subject": "Your order ships tomorrow",
        "content": [{"type": "text/plain", "value": "Soon!"}],
        **extra,
    }


async def at_sink(sink, dom: str, count: int, within: float) -> list[dict]:
    deadline = time.monotonic() + within
    while True:
        found = (await sink.client.get("/api/messages", params={"domain": dom})).json()
        if len(found) >= count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def new_batch(api, key: str) -> str:
    created = await api.post(BATCH, headers=auth(key))
    assert created.status_code == 201, created.text
    return created.json()["batch_id"]


async def schedule(api, key: str, recipients: list[str], batch_id: str) -> tuple[float, list[str]]:
    """Sends to the recipients AHEAD_S seconds from now in the batch: (their send_at, status ids)."""
    send_at = int(time.time()) + AHEAD_S
    answer = await api.post(SEND, headers=auth(key), json=mail(recipients, send_at=send_at, batch_id=batch_id))
    assert answer.status_code == 202, answer.text
    rows = await db_fetch(
        "SELECT status_id::text AS id FROM send_requests WHERE send_id LIKE $1 ORDER BY send_id",
        answer.headers["X-Message-Id"] + ".%",
    )
    return send_at, [r["id"] for r in rows]


async def statuses(api, key: str, status_ids: list[str]) -> list[str]:
    views = [(await api.get(f"/marketing/v3/email/send-statuses/{s}", headers=auth(key))).json() for s in status_ids]
    return [v["status"] for v in views]


async def test_a_canceled_batchs_scheduled_sends_never_arrive_and_end_canceled(api, new_account, sink):
    key, dom = new_account("sg-batch-cancel"), domain()
    batch_id = await new_batch(api, key)
    send_at, status_ids = await schedule(api, key, [f"r{i}@{dom}" for i in range(3)], batch_id)
    assert len(status_ids) == 3 and await statuses(api, key, status_ids) == ["PENDING"] * 3
    canceled = await api.post(SCHEDULED, headers=auth(key), json={"batch_id": batch_id, "status": "cancel"})
    assert canceled.status_code == 201 and canceled.json() == {"batch_id": batch_id, "status": "cancel"}
    again = await api.post(SCHEDULED, headers=auth(key), json={"batch_id": batch_id, "status": "pause"})
    assert again.status_code == 400 and "PATCH" in again.json()["errors"][0]["message"]  # SendGrid's rule
    listed = await api.get(SCHEDULED, headers=auth(key))
    assert listed.json() == [{"batch_id": batch_id, "status": "cancel"}]
    await asyncio.sleep(max(0.0, send_at - time.time()) + 1.5)  # past their send_at
    assert await statuses(api, key, status_ids) == ["CANCELED"] * 3
    assert await at_sink(sink, dom, 1, within=1) == []


async def test_a_paused_batch_is_held_past_its_send_at_and_delivered_once_the_pause_is_removed(api, new_account, sink):
    key, dom = new_account("sg-batch-pause"), domain()
    batch_id = await new_batch(api, key)
    send_at, status_ids = await schedule(api, key, [f"p{i}@{dom}" for i in range(2)], batch_id)
    paused = await api.post(SCHEDULED, headers=auth(key), json={"batch_id": batch_id, "status": "pause"})
    assert paused.status_code == 201, paused.text
    one = await api.get(f"{SCHEDULED}/{batch_id}", headers=auth(key))
    assert one.status_code == 200 and one.json() == [{"batch_id": batch_id, "status": "pause"}]
    await asyncio.sleep(max(0.0, send_at - time.time()) + 1.5)
    assert await at_sink(sink, dom, 1, within=0) == [] and await statuses(api, key, status_ids) == ["PENDING"] * 2
    removed = await api.delete(f"{SCHEDULED}/{batch_id}", headers=auth(key))
    assert removed.status_code == 204, removed.text
    lifted = time.monotonic()
    got = await at_sink(sink, dom, 2, within=20)
    assert sorted(r for m in got for r in m["rcpt_tos"]) == [f"p0@{dom}", f"p1@{dom}"]
    print(f"paused batch: delivered {time.monotonic() - lifted:.1f} s after DELETE")
    gone = await api.get(f"{SCHEDULED}/{batch_id}", headers=auth(key))
    assert gone.status_code == 404 and gone.json()["errors"][0]["message"] == "batch id not found"


async def test_a_mail_send_with_a_batch_id_not_of_the_account_is_a_400(api, new_account):
    key, other = new_account("sg-batch-unknown"), new_account("sg-batch-other")
    theirs = await new_batch(api, other)
    for batch_id in ("HkJ5yLYULb7Rj8GKSx7u025ouWVlMgAi", theirs, "not a batch"):
        answer = await api.post(SEND, headers=auth(key), json=mail([f"u@{domain()}"], batch_id=batch_id))
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"] == [{"message": "invalid batch id", "field": "batch_id", "help": None}]
        checked = await api.get(f"{BATCH}/{batch_id}", headers=auth(key))
        assert checked.status_code == 400 and checked.json()["errors"][0]["message"] == "invalid batch id"
    assert (await api.get(f"{BATCH}/{theirs}", headers=auth(other))).json() == {"batch_id": theirs}


async def test_the_official_library_drives_the_batch_api_and_sends_with_a_batch_id(new_account, sink):
    from python_http_client.exceptions import BadRequestsError
    from sendgrid import SendGridAPIClient
    from sendgrid.helpers.mail import BatchId, Mail

    key, dom = new_account("sg-batch-lib"), domain()
    sg = SendGridAPIClient(api_key=key, host=GATEWAY)

    def calls() -> dict:
        created = sg.client.mail.batch.post()
        batch_id = created.to_dict["batch_id"]
        checked = sg.client.mail.batch._(batch_id).get()
        paused = sg.client.user.scheduled_sends.post(request_body={"batch_id": batch_id, "status": "pause"})
        try:
            sg.client.user.scheduled_sends.post(request_body={"batch_id": batch_id, "status": "cancel"})
            refused = None
        except BadRequestsError as exc:
            refused = exc.status_code
        patched = sg.client.user.scheduled_sends._(batch_id).patch(request_body={"status": "cancel"})
        listed = sg.client.user.scheduled_sends.get()
        # a send with the batch id and no send_at goes out at once: the batch holds scheduled sends only
        message = Mail(from_email="orders@shop.example", to_emails=f"now@{dom}", subject="Now", plain_text_content="x")
        message.batch_id = BatchId(batch_id)
        sent = sg.send(message)
        deleted = sg.client.user.scheduled_sends._(batch_id).delete()
        return {
            "created": (created.status_code, batch_id),
            "checked": (checked.status_code, checked.to_dict),
            "paused": (paused.status_code, paused.to_dict),
            "refused": refused,
            "patched": patched.status_code,
            "listed": (listed.status_code, listed.to_dict),
            "sent": sent.status_code,
            "deleted": deleted.status_code,
        }

    got = await asyncio.to_thread(calls)
    batch_id = got["created"][1]
    assert got["created"][0] == 201 and len(batch_id) == 32
    assert got["checked"] == (200, {"batch_id": batch_id})
    assert got["paused"] == (201, {"batch_id": batch_id, "status": "pause"})
    assert (got["refused"], got["patched"]) == (400, 204)
    assert got["listed"] == (200, [{"batch_id": batch_id, "status": "cancel"}])
    assert (got["sent"], got["deleted"]) == (202, 204)
    assert len(await at_sink(sink, dom, 1, within=20)) == 1
