"""One batch of a rule's topic: sends for the mapped records, dead letters naming the rule and the
offset for the rest, and the offsets to commit only once both are done."""

import json

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from mailstream.gateway.kafka_link import KafkaUnavailable
from mailstream.gateway.triggers.intake import handle_batch
from mailstream.gateway.triggers.rule import TriggerRule

RULE = TriggerRule(
    id="6f1c2b8e-0000-4000-8000-000000000002",
    account_id=3,
    source_topic="orders",
    record_format="JSON",
    email_id=9,
    recipient_field="email",
    send_id_template="order-{{ id }}",
    custom_properties={"items": "items"},
)
TP = TopicPartition("orders", 1)


def record(offset: int, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(TP.topic, TP.partition, offset, 1_700_000_000_000, 0, b"k", value, None, 1, len(value), ())


def order(i: int) -> bytes:
    return json.dumps({"id": i, "email": f"buyer{i}@example.com", "items": [{"sku": "a"}]}).encode()


class Fakes:
    def __init__(self, fail=None):
        self.sent, self.dead, self.fail = [], [], fail

    async def send(self, account_id, cmd):
        if self.fail and cmd.send_id == self.fail[0]:
            raise self.fail[1]
        self.sent.append((account_id, cmd))
        return {"statusId": "x", "status": "PENDING"}

    async def publish_dead(self, dead):
        self.dead += dead

    async def run(self, records):
        return await handle_batch(
            {TP: records}, rule=RULE, send=self.send, publish_dead=self.publish_dead, schemas=None, clock=lambda: 0.0
        )


async def test_mapped_records_are_sent_with_the_rule_and_the_rest_dead_lettered():
    fakes = Fakes()
    offsets = await fakes.run([record(10, order(1)), record(11, b"{oops"), record(12, order(2))])
    assert offsets == {TP: 13}
    assert [(a, c.send_id, c.trigger_id, c.email_id) for a, c in fakes.sent] == [
        (3, "order-1", RULE.id, 9),
        (3, "order-2", RULE.id, 9),
    ]
    assert fakes.sent[0][1].custom_properties == {"items": [{"sku": "a"}]}
    (dead,) = fakes.dead
    assert (dead.source_topic, dead.source_partition, dead.source_offset) == ("orders", 1, 11)
    assert dead.reason.startswith(f"trigger {RULE.id}: bad JSON")
    assert dead.value == b"{oops" and dead.service == "gateway-triggers"


async def test_a_send_whose_input_the_database_refuses_is_dead_lettered():
    fakes = Fakes(fail=("order-2", asyncpg.DataError("invalid byte sequence")))
    assert await fakes.run([record(5, order(1)), record(6, order(2))]) == {TP: 7}
    assert [d.source_offset for d in fakes.dead] == [6]
    assert "refused input" in fakes.dead[0].reason


async def test_an_outage_fails_the_batch_so_that_nothing_is_committed():
    fakes = Fakes(fail=("order-1", KafkaUnavailable("down")))
    with pytest.raises(KafkaUnavailable):
        await fakes.run([record(5, order(1)), record(6, b"not json")])
    assert fakes.dead == []  # published only with the batch's sends
