"""The Acceptor's group commit through its port (handlers.AcceptStore), with an in-memory store:
one transaction and one produce call per batch, a repeated sendId written once, nothing kept
when Kafka does not acknowledge. The PostgreSQL side: tests/integration (test_http_api, SMTP)."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

import pytest

from mailstream.gateway.adapters.accepting import EmailFacts
from mailstream.gateway.caches import Caches
from mailstream.gateway.handlers import Acceptor, SendCommand

ACCOUNT = 7
EMAIL = EmailFacts(1, ACCOUNT, "PUBLISHED", True, 3, "TRANSACTIONAL", "orders@shop.example")


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[uuid.UUID, object] = {}
        self.transactions = 0

    async def email_facts(self, keys):
        return {k: EMAIL for k in keys if k == (ACCOUNT, EMAIL.id)}

    async def recipient_facts(self, keys):
        return {}

    async def verified_domains(self, account_ids):
        return {}

    async def first_send_status(self, account_id, send_id):
        return None

    @asynccontextmanager
    async def transaction(self):
        self.transactions += 1
        pending: dict[uuid.UUID, object] = {}
        store = self

        class Write:
            async def insert_requests(self, rows):
                new = {uuid.UUID(r.status_id): r for r in rows if uuid.UUID(r.status_id) not in store.rows}
                pending.update(new)
                return set(new)

            async def merge_contacts(self, contacts):
                pass

            async def insert_scheduled(self, rows):
                pass

        yield Write()  # an exception from the body (Kafka refused) leaves nothing behind
        self.rows.update(pending)


class Kafka:
    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list] = []
        self.fail = fail

    async def publish_all(self, records) -> None:
        self.calls.append(list(records))
        if self.fail:
            raise ConnectionError("no acknowledgement")


def send(to: str, send_id: str | None = None) -> SendCommand:
    return SendCommand(email_id=EMAIL.id, to=to, require_single_send_api=True, send_id=send_id)


async def test_concurrent_sends_share_one_transaction_and_one_produce_call():
    store, kafka = MemoryStore(), Kafka()
    acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
    views = await asyncio.gather(*(acceptor.send(ACCOUNT, send(f"r{n}@example.com")) for n in range(20)))
    assert {v["status"] for v in views} == {"PENDING"}
    assert len(store.rows) == 20
    assert store.transactions == len(kafka.calls) == 1 and len(kafka.calls[0]) == 20


async def test_a_send_id_repeated_in_one_batch_is_written_and_published_once():
    store, kafka = MemoryStore(), Kafka()
    acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
    views = await asyncio.gather(*(acceptor.send(ACCOUNT, send("jane@example.com", "order-1")) for _ in range(3)))
    assert len({v["statusId"] for v in views}) == 1 and len(store.rows) == 1
    assert sum(map(len, kafka.calls)) == 1


async def test_nothing_is_kept_when_kafka_does_not_acknowledge():
    store, kafka = MemoryStore(), Kafka(fail=True)
    acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
    with pytest.raises(ConnectionError):
        await acceptor.send(ACCOUNT, send("jane@example.com"))
    assert store.rows == {}


async def test_a_send_of_an_unknown_email_ends_at_once_and_publishes_nothing():
    store, kafka = MemoryStore(), Kafka()
    acceptor = Acceptor(store, kafka.publish_all, Caches(api_key_ttl_s=0))
    view = await acceptor.send(ACCOUNT, SendCommand(email_id=99, to="jane@example.com", require_single_send_api=True))
    assert (view["status"], view["sendResult"]) == ("COMPLETE", "MISSING_CONTENT")
    assert kafka.calls == [] and len(store.rows) == 1
