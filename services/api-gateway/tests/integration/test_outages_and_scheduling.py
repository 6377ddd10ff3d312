"""503s with Kafka or PostgreSQL down, and scheduled sends across a crash and two replicas.

Each test starts its own gateway process (never touching the shared stack's components).
"""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from mailstream.gateway.adapters import domains_store
from mailstream.gateway.dkim_keys import new_dkim_key
from testkit import common_settings

pytestmark = pytest.mark.integration
DATABASE_URL = common_settings().database_url


async def count_sends(send_id: str) -> int:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        return await conn.fetchval("SELECT count(*) FROM send_requests WHERE send_id = $1", send_id)
    finally:
        await conn.close()


async def test_with_kafka_down_a_send_is_503_and_nothing_is_recorded(api, new_account, h, private_gateway):
    key = new_account()
    email_id = await h.create_email(api, key)
    # (its scheduler off: it would lock due rows of the shared stack only to fail publishing them)
    gw = await private_gateway({"MAILSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:1", "MAILSTREAM_SCHEDULER_ENABLED": "false"})
    send_id = f"kafka-down-{uuid.uuid4()}"
    body = {"emailId": email_id, "message": {"to": "k@example.com", "sendId": send_id}, "contactProperties": {"a": "b"}}
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        reply = await client.post(h.SEND, headers=h.auth(key), json=body)
        error = h.assert_error_shape(reply, 503, "SERVICE_UNAVAILABLE")
        assert "Kafka" in error["message"] and "not accepted" in error["message"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"] == {"postgres": True, "kafka": False}
    assert await count_sends(send_id) == 0
    assert (await api.get("/mailstream/v1/contacts/k@example.com", headers=h.auth(key))).status_code == 404
    # the same sendId is then a new send on a healthy gateway: nothing of the refused one was left behind
    accepted = await api.post(h.SEND, headers=h.auth(key), json=body)
    assert accepted.json()["status"] == "PENDING" and await count_sends(send_id) == 1


async def test_with_postgres_down_requests_are_503_with_a_clear_body(new_account, h, private_gateway):
    key = new_account()
    gw = await private_gateway({"MAILSTREAM_DATABASE_URL": "postgresql://mailstream:mailstream@127.0.0.1:1/mailstream"})
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        for reply in (
            await client.post(h.SEND, headers=h.auth(key), json={"emailId": 1, "message": {"to": "p@example.com"}}),
            await client.get("/mailstream/v1/emails", headers=h.auth(key)),
            await client.get(f"/marketing/v3/email/send-statuses/{uuid.uuid4()}", headers=h.auth(key)),
        ):
            error = h.assert_error_shape(reply, 503, "SERVICE_UNAVAILABLE")
            assert "database is unavailable" in error["message"] and reply.headers["retry-after"] == "1"
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["postgres"] is False


def at(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def schedule(client, h, key, email_id, send_at: datetime, to: str, send_id: str | None = None) -> str:
    body = {"emailId": email_id, "message": {"to": to, "sendId": send_id}, "sendAt": send_at.isoformat()}
    reply = await client.post(h.SEND, headers=h.auth(key), json=body)
    assert reply.status_code == 200 and reply.json()["status"] == "PENDING", reply.text
    return reply.json()["statusId"]


async def test_a_scheduled_send_survives_a_crash_and_is_released_once_within_a_second(
    api, new_account, h, private_gateway, send_requested_tap
):
    key = new_account()
    email_id = await h.create_email(api, key)
    gw = await private_gateway({"MAILSTREAM_SCHEDULER_INTERVAL_S": "0.1"})
    send_at = at(4)
    to, send_id = f"s-{uuid.uuid4().hex[:8]}@example.com", f"sched-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        status_id = await schedule(client, h, key, email_id, send_at, to, send_id)
        gw.kill()  # crash: SIGKILL right after accepting
        gw.spawn()  # and restart the same gateway
        await gw.wait_healthy()
        # the sendId still answers the first status after the restart, and adds nothing
        assert await schedule(client, h, key, email_id, at(30), to, send_id) == status_id
    seen = await send_requested_tap.collect({status_id}, within=20, settle=3)
    assert len(seen[status_id]) == 1, seen
    delay = seen[status_id][0] - send_at.timestamp()
    assert -0.05 <= delay < 1.0, delay
    status = (await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=h.auth(key))).json()
    assert status["status"] in ("PENDING", "PROCESSING", "COMPLETE")


async def test_two_replicas_release_every_scheduled_send_exactly_once(
    api, new_account, h, private_gateway, send_requested_tap
):
    key = new_account()
    email_id = await h.create_email(api, key)
    # two more replicas polling hard, besides the shared gateway's own scheduler
    await private_gateway({"MAILSTREAM_SCHEDULER_INTERVAL_S": "0.02"})
    await private_gateway({"MAILSTREAM_SCHEDULER_INTERVAL_S": "0.03"})
    send_at = at(6)
    ids = set(
        await asyncio.gather(
            *(schedule(api, h, key, email_id, send_at, f"r{i}-{uuid.uuid4().hex[:6]}@example.com") for i in range(60))
        )
    )
    seen = await send_requested_tap.collect(ids, within=25, settle=3)
    counts = {sid: len(ts) for sid, ts in seen.items()}
    assert set(counts.values()) == {1}, counts
    delays = [ts[0] - send_at.timestamp() for ts in seen.values()]
    assert max(delays) < 1.0 and min(delays) >= -0.05, (min(delays), max(delays))


async def test_cancel_a_scheduled_send(api, new_account, h, send_requested_tap):
    key = new_account()
    email_id = await h.create_email(api, key)
    status_id = await schedule(api, h, key, email_id, at(3), f"c-{uuid.uuid4().hex[:8]}@example.com")
    canceled = await api.post(f"/mailstream/v1/sends/{status_id}/cancel", headers=h.auth(key))
    assert canceled.status_code == 200 and canceled.json()["status"] == "CANCELED"
    again = await api.post(f"/mailstream/v1/sends/{status_id}/cancel", headers=h.auth(key))
    assert again.json()["status"] == "CANCELED"
    seen = await send_requested_tap.collect({status_id}, within=6, settle=0)
    assert seen[status_id] == []  # its time passed and it was not released
    status = (await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=h.auth(key))).json()
    assert status["status"] == "CANCELED" and "sendResult" not in status


async def test_a_send_already_released_cannot_be_canceled(api, new_account, h):
    key = new_account()
    email_id = await h.create_email(api, key)
    now = await api.post(h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": "n@example.com"}})
    reply = await api.post(f"/mailstream/v1/sends/{now.json()['statusId']}/cancel", headers=h.auth(key))
    h.assert_error_shape(reply, 409, "CONFLICT")
    past = await api.post(
        h.SEND,
        headers=h.auth(key),
        json={"emailId": email_id, "message": {"to": "n@example.com"}, "sendAt": at(-60).isoformat()},
    )
    assert past.json()["status"] == "PENDING"  # a sendAt in the past sends now
    started = time.monotonic()
    while time.monotonic() - started < 5:
        cancel = await api.post(f"/mailstream/v1/sends/{past.json()['statusId']}/cancel", headers=h.auth(key))
        if cancel.status_code == 409:
            break
    assert cancel.status_code == 409


async def test_with_the_sending_domain_check_on_an_unverified_from_domain_is_unconfigured(
    api, new_account, h, private_gateway
):
    key = new_account()
    email_id = await h.create_email(api, key, fromEmail=f"orders@{uuid.uuid4().hex[:8]}.example")
    gw = await private_gateway({"MAILSTREAM_REQUIRE_SENDING_DOMAIN": "true"})
    verified = f"{uuid.uuid4().hex[:8]}.example"
    # a real key: the sender signs the accepted send below with it (a bogus one would stall its partition)
    key_pair = new_dkim_key()
    pool = await asyncpg.create_pool(DATABASE_URL, min_size=1, max_size=1)
    try:  # a verified sending domain of this account, as the domain settings leave one
        account_id = await pool.fetchval("SELECT account_id FROM emails WHERE id = $1", email_id)
        await domains_store.insert_domain(
            pool,
            account_id,
            verified,
            selector=key_pair.selector,
            private_key=key_pair.private_key,
            public_key=key_pair.public_key,
        )
        now = datetime.now(UTC)
        await domains_store.save_check(
            pool,
            account_id,
            verified,
            state="VERIFIED",
            verified_at=now,
            failing_since=None,
            checked_at=now,
            record_checks={},
        )
    finally:
        await pool.close()
    async with httpx.AsyncClient(base_url=gw.url, timeout=30) as client:
        unconfigured = await client.post(
            h.SEND, headers=h.auth(key), json={"emailId": email_id, "message": {"to": "d@example.com"}}
        )
        assert (unconfigured.json()["status"], unconfigured.json()["sendResult"]) == (
            "COMPLETE",
            "UNCONFIGURED_SENDING_DOMAIN",
        )
        body = {"emailId": email_id, "message": {"to": "d@example.com", "from": f"Shop <orders@{verified.upper()}>"}}
        accepted = await client.post(h.SEND, headers=h.auth(key), json=body)
        assert accepted.json()["status"] == "PENDING", accepted.text
