"""SendGrid batches in PostgreSQL with the shared gateway's scheduler: scheduled_sends.paused
follows the batch's pause (for sends scheduled before and after it), a paused send 72 h past its
send_at is canceled (SendGrid's Expired) while a younger one is released once the pause is
removed, and removing a cancel before its sends fall due lets them go out. The send_at of a
row is moved into the past in SQL to stand for the hours passing."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from testkit import db_fetch

pytestmark = pytest.mark.integration
SEND = "/v3/mail/send"
SCHEDULED = "/v3/user/scheduled_sends"


def mail(recipients: list[str], send_at: int, batch_id: str) -> dict:
    return {
        "personalizations": [{"to": [{"email": r}]} for r in recipients],
        "from": {"email": "orders@shop.example"},
        "subject": "Later",
        "content": [{"type": "text/plain", "value": "x"}],
        "send_at": send_at,
        "batch_id": batch_id,
    }


async def scheduled(api, h, key: str, batch_id: str, count: int, ahead_s: int) -> list[str]:
    dom = f"sgbi-{uuid.uuid4().hex[:8]}.example.com"
    body = mail([f"r{i}@{dom}" for i in range(count)], int(time.time()) + ahead_s, batch_id)
    answer = await api.post(SEND, headers=h.auth(key), json=body)
    assert answer.status_code == 202, answer.text
    rows = await db_fetch(
        "SELECT status_id::text AS id FROM send_requests WHERE send_id LIKE $1 ORDER BY send_id",
        answer.headers["X-Message-Id"] + ".%",
    )
    return [r["id"] for r in rows]


async def rows_of(status_ids: list[str]) -> list[dict]:
    found = await db_fetch(
        """SELECT status_id::text AS id, batch_id, paused, released_at IS NOT NULL AS released,
                  canceled_at IS NOT NULL AS canceled
           FROM scheduled_sends WHERE status_id = ANY($1::uuid[])""",
        status_ids,
    )
    by_id = {r["id"]: dict(r) for r in found}
    return [by_id[s] for s in status_ids]


async def until(predicate, within: float = 5.0):
    deadline = time.monotonic() + within
    while True:
        value = await predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def set_status(api, h, key: str, batch_id: str, status: str) -> None:
    answer = await api.post(SCHEDULED, headers=h.auth(key), json={"batch_id": batch_id, "status": status})
    assert answer.status_code == 201, answer.text


async def test_a_pause_holds_sends_before_and_after_it_and_expires_them_72_hours_past_due(api, new_account, h):
    key = new_account("sg-batch-int")
    batch_id = (await api.post("/v3/mail/batch", headers=h.auth(key))).json()["batch_id"]
    before = await scheduled(api, h, key, batch_id, 2, ahead_s=600)
    await set_status(api, h, key, batch_id, "pause")
    after = await scheduled(api, h, key, batch_id, 1, ahead_s=600)
    rows = await rows_of(before + after)
    assert [(r["batch_id"], r["paused"]) for r in rows] == [(batch_id, True)] * 3
    old, young, future = before + after
    await db_fetch(  # as if the hours had passed: 73 h and 1 h past due
        """UPDATE scheduled_sends SET send_at = now() - CASE WHEN status_id = $1::uuid
               THEN interval '73 hours' ELSE interval '1 hour' END
           WHERE status_id = ANY(ARRAY[$1, $2]::uuid[])""",
        old,
        young,
    )

    async def old_expired():
        return (await rows_of([old]))[0]["canceled"]

    assert await until(old_expired), "the scheduler did not cancel a paused send 72 h past due"
    view = (await api.get(f"/marketing/v3/email/send-statuses/{old}", headers=h.auth(key))).json()
    assert view["status"] == "CANCELED"
    assert [(r["released"], r["canceled"]) for r in await rows_of([young, future])] == [(False, False)] * 2

    removed = await api.delete(f"{SCHEDULED}/{batch_id}", headers=h.auth(key))
    assert removed.status_code == 204

    async def young_released():
        return (await rows_of([young]))[0]["released"]

    assert await until(young_released), "a paused send past due was not released once the pause was removed"
    (left,) = await rows_of([future])
    assert (left["paused"], left["released"], left["canceled"]) == (False, False, False)


async def test_removing_a_cancel_before_the_sends_fall_due_lets_them_go(api, new_account, h):
    key = new_account("sg-batch-undo")
    batch_id = (await api.post("/v3/mail/batch", headers=h.auth(key))).json()["batch_id"]
    kept = await scheduled(api, h, key, batch_id, 1, ahead_s=2)
    await set_status(api, h, key, batch_id, "cancel")
    patched = await api.patch(f"{SCHEDULED}/{batch_id}", headers=h.auth(key), json={"status": "pause"})
    assert patched.status_code == 204
    assert (await rows_of(kept))[0]["paused"] is True  # PATCH cancel -> pause holds them
    assert (await api.delete(f"{SCHEDULED}/{batch_id}", headers=h.auth(key))).status_code == 204

    async def released():
        return (await rows_of(kept))[0]["released"]

    assert await until(released, within=8), "the batch's send was not released after its cancel was removed"
    assert (await rows_of(kept))[0]["canceled"] is False
