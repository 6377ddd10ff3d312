"""SendGrid's batches without sockets: a Mail Send's batch_id (read, carried to each send, kept only
with a scheduled one), the status rules of /v3/user/scheduled_sends, batch ids, and the scheduler's
decision per due send (released, or canceled for a canceled batch or an expired pause). The SQL
(paused sends, the 72 h rule, locks): tests/integration/test_sendgrid_batches.py; the whole:
tests/e2e/test_sendgrid_batches.py."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import pytest
import test_sendgrid
from test_acceptor import ACCOUNT, Kafka, MemoryStore
from test_sendgrid import NOW, body, build

from mailstream.gateway import scheduler
from mailstream.gateway.caches import Caches
from mailstream.gateway.handlers import Acceptor
from mailstream.gateway.sendgrid import batches
from mailstream.gateway.sendgrid.errors import SendGridError
from mailstream.gateway.sendgrid.request import parse


class RecordingStore(MemoryStore):
    """MemoryStore that keeps the scheduled rows a transaction writes."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled: list[tuple] = []

    @asynccontextmanager
    async def transaction(self):
        store = self
        async with super().transaction() as write:

            class Write:
                insert_requests = write.insert_requests
                merge_contacts = write.merge_contacts

                async def insert_scheduled(self, rows):
                    store.scheduled.extend(rows)

            yield Write()


class TestMailSendBatchId:
    def test_the_batch_id_is_read(self):
        assert parse(body(batch_id="HkJ5yLYULb7Rj8GKSx7u025ouWVlMgAi"), now=NOW).batch_id == (
            "HkJ5yLYULb7Rj8GKSx7u025ouWVlMgAi"
        )
        assert parse(body(), now=NOW).batch_id is None

    def test_a_batch_id_that_is_not_a_string_is_a_400_naming_it(self):
        with pytest.raises(SendGridError) as caught:
            parse(body(batch_id=17), now=NOW)
        assert [e["field"] for e in caught.value.errors] == ["batch_id"]

    def test_every_personalizations_send_carries_the_batch_id(self):
        b = body(batch_id="b1", send_at=NOW + 60)
        b["personalizations"].append({"to": [{"email": "b@example.com"}]})
        assert [c.batch_id for c in build(b)] == ["b1", "b1"]

    async def test_only_a_scheduled_send_keeps_its_batch_and_one_due_now_goes_out_at_once(self):
        store, kafka = RecordingStore(), Kafka()
        acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
        b = body(batch_id="b1", send_at=NOW + 3600)
        b["personalizations"].append({"to": [{"email": "now@example.com"}], "send_at": 1})  # past: now
        later, now = await acceptor.send_many(ACCOUNT, build(b))
        assert later.scheduled and later.batch_id == "b1"
        assert not now.scheduled and now.batch_id is None and [len(c) for c in kafka.calls] == [1]
        ((status_id, account_id, send_at, payload, batch_id),) = store.scheduled
        assert (status_id, account_id, batch_id) == (later.row.status_id, ACCOUNT, "b1") and payload
        assert send_at.timestamp() == NOW + 3600


class TestStatusRules:
    def test_a_status_body_is_read(self):
        assert batches.read_status_body({"batch_id": "b1", "status": "pause"}, with_batch_id=True) == ("b1", "pause")
        assert batches.read_status_body({"status": "cancel"}, with_batch_id=False) == (None, "cancel")

    @pytest.mark.parametrize(
        ("payload", "with_batch_id", "fields"),
        [
            ({"batch_id": "b1", "status": "resume"}, True, ["status"]),
            ({"batch_id": "b1"}, True, ["status"]),
            ({"status": "pause"}, True, ["batch_id"]),
            ({"batch_id": 5, "status": "pause", "extra": 1}, True, ["extra", "batch_id"]),
            ({"batch_id": "b1", "status": "pause"}, False, ["batch_id"]),  # PATCH names the batch in its path
            (["pause"], False, [None]),
        ],
    )
    def test_a_bad_status_body_is_a_400_naming_each_field(self, payload, with_batch_id, fields):
        with pytest.raises(SendGridError) as caught:
            batches.read_status_body(payload, with_batch_id=with_batch_id)
        assert caught.value.status == 400 and [e["field"] for e in caught.value.errors] == fields

    def test_a_status_is_set_once_on_a_batch_of_the_account(self):
        batches.check_create(True, None)
        with pytest.raises(SendGridError) as unknown:
            batches.check_create(False, None)
        assert unknown.value.status == 400 and unknown.value.errors[0]["message"] == "invalid batch id"
        for current in ("pause", "cancel"):  # SendGrid: a second status is refused; PATCH changes it
            with pytest.raises(SendGridError) as again:
                batches.check_create(True, current)
            assert again.value.status == 400 and "PATCH" in again.value.errors[0]["message"]

    def test_patch_and_delete_need_a_batch_with_a_status(self):
        batches.check_change(True, "pause")
        for found, current in ((False, None), (True, None)):
            with pytest.raises(SendGridError) as caught:
                batches.check_change(found, current)
            assert caught.value.status == 404 and caught.value.errors[0]["message"] == "batch id not found"

    def test_batch_ids_are_opaque_unique_and_well_formed(self):
        ids = {batches.new_batch_id() for _ in range(1000)}
        assert len(ids) == 1000 and all(len(i) == 32 and i.isalnum() and batches.well_formed(i) for i in ids)
        assert not any(batches.well_formed(i) for i in ("", "a b", "x" * 101, "a\x00", "../x"))


class TestRoutes:
    """What the routes answer before any database work: SendGrid's shapes and codes."""

    KEY = test_sendgrid.TestRoute.KEY

    async def test_auth_body_and_id_problems_answer_in_sendgrid_shape(self):
        async with test_sendgrid.TestRoute().client() as api:
            no_key = await api.post("/v3/mail/batch")
            bad_status = await api.post(
                "/v3/user/scheduled_sends", json={"batch_id": "b1", "status": "resume"}, headers=self.KEY
            )
            not_json = await api.patch("/v3/user/scheduled_sends/b1", content=b"{", headers=self.KEY)
            big = await api.post(
                "/v3/user/scheduled_sends", content=b"{}", headers={**self.KEY, "Content-Length": str(1 << 20)}
            )
            odd_id = await api.get("/v3/mail/batch/not%20a%20batch", headers=self.KEY)
            odd_change = await api.delete("/v3/user/scheduled_sends/not%20a%20batch", headers=self.KEY)
            odd_mail = await api.post("/v3/mail/send", json=body(batch_id="not a batch"), headers=self.KEY)
        assert no_key.status_code == 401 and set(no_key.json()["errors"][0]) == {"message", "field", "help"}
        assert bad_status.status_code == 400 and bad_status.json()["errors"][0]["field"] == "status"
        assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["errors"][0]["message"]
        assert big.status_code == 413
        assert odd_id.status_code == 400
        assert odd_id.json() == {"errors": [{"message": "invalid batch id", "field": None, "help": None}]}
        assert odd_change.status_code == 404 and odd_change.json()["errors"][0]["message"] == "batch id not found"
        assert odd_mail.status_code == 400 and odd_mail.json()["errors"][0]["field"] == "batch_id"

    async def test_a_key_without_the_send_scope_is_403(self):
        async with test_sendgrid.TestRoute().client(scopes={"tokens"}) as api:
            reply = await api.get("/v3/user/scheduled_sends", headers=self.KEY)
        assert reply.status_code == 403 and reply.json()["errors"][0]["message"] == "access forbidden"


class FakePool:
    @asynccontextmanager
    async def acquire(self):
        yield self

    @asynccontextmanager
    async def transaction(self):
        yield


class TestScheduler:
    def due(self, status_id: str, *, discard: bool = False) -> dict:
        payload = b"record-" + status_id.encode()
        return {"status_id": status_id, "payload": payload, "recipient": "A@x", "discard": discard}

    @pytest.fixture
    def world(self, monkeypatch):
        calls: dict[str, list] = {"published": [], "released": [], "canceled": []}
        rows = [self.due("s1"), self.due("s2", discard=True), self.due("s3")]
        expired = ["s4"]

        async def lock_due(conn, limit):
            return rows

        async def lock_expired(conn, limit):
            return expired

        async def mark_released(conn, ids):
            calls["released"].extend(ids)

        async def cancel_many(conn, ids):
            calls["canceled"].extend(ids)

        for name, fn in (("lock_due", lock_due), ("lock_expired", lock_expired)):
            monkeypatch.setattr(scheduler.sends, name, fn)
        monkeypatch.setattr(scheduler.sends, "mark_released", mark_released)
        monkeypatch.setattr(scheduler.sends, "cancel_many", cancel_many)
        return calls, rows, expired

    async def test_a_canceled_batchs_due_send_and_an_expired_paused_one_are_canceled_not_published(self, world):
        calls, _, _ = world

        async def send_many(topic, records):
            calls["published"].extend(records)

        assert await scheduler.release_due(FakePool(), send_many) == 4
        assert calls["published"] == [(b"a@x", b"record-s1"), (b"a@x", b"record-s3")]
        assert calls["released"] == ["s1", "s3"] and calls["canceled"] == ["s2", "s4"]
        assert not set(calls["released"]) & set(calls["canceled"])  # canceled or released, never both

    async def test_when_kafka_refuses_nothing_is_marked(self, world):
        calls, _, _ = world

        async def send_many(topic, records):
            raise ConnectionError("no acknowledgement")

        with pytest.raises(ConnectionError):
            await scheduler.release_due(FakePool(), send_many)
        assert calls["released"] == [] and calls["canceled"] == []  # and the transaction rolls back

    async def test_only_canceled_sends_are_ended_without_a_publish(self, world):
        calls, rows, expired = world
        rows[:] = [self.due("s2", discard=True)]
        expired.clear()

        async def send_many(topic, records):
            raise AssertionError("nothing to publish")

        assert await scheduler.release_due(FakePool(), send_many) == 1 and calls["canceled"] == ["s2"]

    async def test_overdue_sends_it_cannot_take_do_not_make_it_spin(self, monkeypatch):
        passes = 0

        async def release_due(pool, send_many):
            nonlocal passes
            passes += 1
            return 0

        async def next_due_in(pool):
            return -30.0  # a paused batch's or another replica's: not this pass's to take

        monkeypatch.setattr(scheduler, "release_due", release_due)
        monkeypatch.setattr(scheduler.sends, "next_due_in", next_due_in)
        stop = asyncio.Event()
        task = asyncio.create_task(scheduler.run_scheduler(FakePool(), None, stop, interval_s=0.1))
        await asyncio.sleep(0.35)
        stop.set()
        await task
        assert 2 <= passes <= 5
