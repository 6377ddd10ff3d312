"""A fetched batch through the renderer: what goes to which topic, with which key, and which
offsets may then be committed (publishing faked, no sockets)."""

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from renderer_fakes import ports, request, version

from mailstream.renderer import handlers
from mailstream.renderer.adapters.publisher import records_of
from mailstream.renderer.intake import render_batch
from mailstream.schemas import (
    DeliveryAttempted,
    EmailRendered,
    MessageRendered,
    RecordDeadLettered,
    SendRequested,
    decode,
    encode,
)

TP = TopicPartition("email.send.requested", 3)


class Published:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []

    async def __call__(self, events, origins=None) -> None:
        self.records += records_of(events, origins)

    def only(self, topic, record_type):
        found = [(key, decode(value, record_type)) for t, key, value in self.records if t == topic]
        assert len(found) == 1, self.records
        return found[0]

    def topics(self) -> list[str]:
        return sorted(t for t, _, _ in self.records)


def record(value: bytes, offset: int = 42, key: bytes = b"jane@example.com") -> ConsumerRecord:
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, key, value, None, len(key), len(value), ())


async def run(*values: bytes, p=None):
    published = Published()
    batch = {TP: [record(v, offset=40 + i) for i, v in enumerate(values)]}
    offsets = await render_batch(batch, ports=p or ports(), publish=published)
    return published, offsets


async def test_a_rendered_message_goes_to_email_rendered_keyed_by_ip_with_its_metadata_beside_it():
    published, offsets = await run(encode(request()))
    key, rendered = published.only("email.rendered", EmailRendered)
    assert key == b"127.0.0.9" == rendered.sending_ip.encode()
    meta_key, meta = published.only("email.rendered.meta", MessageRendered)
    assert meta_key == rendered.message_id.encode() and meta == MessageRendered.of(rendered)
    assert published.topics() == ["email.rendered", "email.rendered.meta"]
    assert offsets == {TP: 41}


async def test_the_metadata_names_the_one_off_send_of_its_send():
    published, _ = await run(encode(request(one_off_send_id="oo-3")))
    _, meta = published.only("email.rendered.meta", MessageRendered)
    assert (meta.one_off_send_id, meta.trigger_id) == ("oo-3", None)


async def test_the_metadata_of_a_triggered_send_names_its_trigger_rule():
    published, _ = await run(encode(request(trigger_id="rule-7")))
    _, meta = published.only("email.rendered.meta", MessageRendered)
    assert meta.trigger_id == "rule-7"


async def test_a_dropped_send_goes_to_email_delivery_keyed_by_message_id():
    published, _ = await run(encode(request(custom_properties_json="{}")))
    key, outcome = published.only("email.delivery", DeliveryAttempted)
    assert key == outcome.message_id.encode() and outcome.send_result == "MISSING_TEMPLATE_PROPERTIES"
    assert published.topics() == ["email.delivery"]  # an ordinary drop is not a dead letter


async def test_an_undecodable_record_is_dead_lettered_with_the_reason_and_the_batch_goes_on():
    published, offsets = await run(b"\x00garbage", encode(request()))
    key, dead = published.only("email.dead-letter", RecordDeadLettered)
    assert key == b"jane@example.com" and dead.value == b"\x00garbage" and dead.service == "renderer"
    assert (dead.source_topic, dead.source_partition, dead.source_offset) == ("email.send.requested", 3, 40)
    assert "decode" in dead.reason
    assert published.topics() == ["email.dead-letter", "email.rendered", "email.rendered.meta"]
    assert offsets == {TP: 42}


async def test_an_unprocessable_send_is_dead_lettered_and_ends_with_its_result():
    published, _ = await run(encode(request(custom_properties_json="[1, 2")))
    _, dead = published.only("email.dead-letter", RecordDeadLettered)
    _, outcome = published.only("email.delivery", DeliveryAttempted)
    assert "customProperties" in dead.reason and outcome.send_result == "CORRUPT_INPUT"
    assert decode(dead.value, SendRequested).status_id == outcome.status_id


async def test_an_unexpected_error_is_dead_lettered_and_ends_only_that_send(monkeypatch):
    real = handlers.render_one

    def broken(req, facts, p):
        if req.to == "bad@example.com":
            raise KeyError("boom")
        return real(req, facts, p)

    monkeypatch.setattr("mailstream.renderer.intake.render_one", broken)
    published, _ = await run(encode(request(to="bad@example.com")), encode(request()))
    _, dead = published.only("email.dead-letter", RecordDeadLettered)
    _, outcome = published.only("email.delivery", DeliveryAttempted)
    assert "KeyError" in dead.reason and outcome.send_result == "CORRUPT_INPUT"
    published.only("email.rendered", EmailRendered)


async def test_a_database_error_fails_the_whole_batch_so_that_the_loop_retries_it(monkeypatch):
    p = ports(email=version())

    async def down(keys):
        raise ConnectionResetError("database went away")

    monkeypatch.setattr(p.emails, "load_many", down)
    published = Published()
    with pytest.raises(ConnectionResetError):
        await render_batch({TP: [record(encode(request()))]}, ports=p, publish=published)
    assert published.records == []  # nothing half-published
