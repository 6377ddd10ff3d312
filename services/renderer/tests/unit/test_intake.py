"""The agent's per-record logic: what goes to which topic, with which key (topics faked, no sockets)."""

from types import SimpleNamespace

import pytest
from renderer_fakes import ports, request, version

from mailstream.renderer import agents, topics
from mailstream.schemas import (
    DeliveryAttempted,
    EmailRendered,
    RecordDeadLettered,
    SendRequested,
    decode,
    encode,
)


class Sent:
    def __init__(self, monkeypatch) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []
        for name in ("rendered", "delivery", "dead_letter"):
            monkeypatch.setattr(getattr(topics, name), "send", self._recorder(name))

    def _recorder(self, name):
        async def send(*, key, value):
            self.records.append((name, key, value))

        return send

    def only(self, name, record_type):
        found = [(key, decode(value, record_type)) for topic, key, value in self.records if topic == name]
        assert len(found) == 1, self.records
        return found[0]

    def topics(self) -> list[str]:
        return sorted(topic for topic, _, _ in self.records)


@pytest.fixture
def sent(monkeypatch) -> Sent:
    return Sent(monkeypatch)


def event(value: bytes, key: bytes = b"jane@example.com"):
    message = SimpleNamespace(topic="email.send.requested", partition=3, offset=42)
    return SimpleNamespace(key=key, value=value, message=message)


async def test_a_rendered_message_goes_to_email_rendered_keyed_by_its_sending_ip(sent):
    await agents.process(event(encode(request())), ports())
    key, rendered = sent.only("rendered", EmailRendered)
    assert key == b"127.0.0.9" == rendered.sending_ip.encode()
    assert sent.topics() == ["rendered"]


async def test_a_dropped_send_goes_to_email_delivery_keyed_by_message_id(sent):
    await agents.process(event(encode(request(custom_properties_json="{}"))), ports())
    key, outcome = sent.only("delivery", DeliveryAttempted)
    assert key == outcome.message_id.encode() and outcome.send_result == "MISSING_TEMPLATE_PROPERTIES"
    assert sent.topics() == ["delivery"]  # an ordinary drop is not a dead letter


async def test_an_undecodable_record_is_dead_lettered_with_the_reason_and_the_agent_goes_on(sent):
    await agents.process(event(b"\x00garbage", key=b"k-1"), ports())
    key, dead = sent.only("dead_letter", RecordDeadLettered)
    assert key == b"k-1" and dead.value == b"\x00garbage" and dead.service == "renderer"
    assert (dead.source_topic, dead.source_partition, dead.source_offset) == ("email.send.requested", 3, 42)
    assert "decode" in dead.reason
    await agents.process(event(encode(request())), ports())
    assert sent.topics() == ["dead_letter", "rendered"]


async def test_an_unprocessable_send_is_dead_lettered_and_ends_with_its_result(sent):
    await agents.process(event(encode(request(custom_properties_json="[1, 2"))), ports())
    _, dead = sent.only("dead_letter", RecordDeadLettered)
    _, outcome = sent.only("delivery", DeliveryAttempted)
    assert "customProperties" in dead.reason and outcome.send_result == "CORRUPT_INPUT"
    assert decode(dead.value, SendRequested).status_id == outcome.status_id


async def test_an_unexpected_error_is_dead_lettered_and_ends_the_send(sent, monkeypatch):
    async def broken(*args):
        raise KeyError("boom")

    p = ports(email=version())
    monkeypatch.setattr(p.emails, "load", broken)
    await agents.process(event(encode(request())), p)
    _, dead = sent.only("dead_letter", RecordDeadLettered)
    _, outcome = sent.only("delivery", DeliveryAttempted)
    assert "KeyError" in dead.reason and outcome.send_result == "CORRUPT_INPUT"


async def test_transient_database_errors_are_retried_not_dropped(sent, monkeypatch):
    p = ports(email=version())
    real_load, calls = p.emails.load, []

    async def flaky(*args):
        calls.append(args)
        if len(calls) < 3:
            raise ConnectionResetError("database went away")
        return await real_load(*args)

    monkeypatch.setattr(p.emails, "load", flaky)
    monkeypatch.setattr(agents.asyncio, "sleep", _no_sleep)
    await agents.process(event(encode(request())), p)
    assert len(calls) == 3 and sent.topics() == ["rendered"]


async def _no_sleep(_delay):
    return None
