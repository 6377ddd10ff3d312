import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from mailstream.schemas import UnsubscribeReason, UnsubscribeRecorded, encode
from mailstream.tracker.batches import GroupWriter, consume


@dataclass
class Event:
    value: bytes


def unsub(n: int) -> UnsubscribeRecorded:
    return UnsubscribeRecorded(f"e{n}", n, f"r{n}@example.com", UnsubscribeReason.LINK, datetime.now(UTC))


class Sink:
    def __init__(self, *, fail_times: int = 0, refuse: set[int] = frozenset()):
        self.fail_times, self.refuse, self.calls, self.written, self.dead, self.slept = (
            fail_times,
            refuse,
            0,
            [],
            [],
            [],
        )

    async def write(self, records):
        self.calls += 1
        if self.fail_times:
            self.fail_times -= 1
            raise OSError("connection refused")
        if any(r.account_id in self.refuse for r in records):
            raise asyncpg.DataError("invalid input")
        self.written += [r.account_id for r in records]
        return [r.account_id for r in records]

    async def dead_letter(self, event, reason):
        self.dead.append((event.value, reason))

    async def sleep(self, seconds):
        self.slept.append(seconds)


async def test_undecodable_records_are_dead_lettered_and_the_rest_written_in_one_call():
    sink = Sink()
    events = [Event(encode(unsub(1))), Event(b"garbage"), Event(encode(unsub(2)))]
    assert await consume(events, UnsubscribeRecorded, sink.write, sink.dead_letter) == [1, 2]
    assert sink.calls == 1 and sink.written == [1, 2]
    assert [v for v, _ in sink.dead] == [b"garbage"] and "Avro" in sink.dead[0][1]


async def test_an_unavailable_database_is_retried_with_backoff_until_the_batch_is_written():
    sink = Sink(fail_times=3)
    events = [Event(encode(unsub(n))) for n in range(3)]
    assert await consume(events, UnsubscribeRecorded, sink.write, sink.dead_letter, sleep=sink.sleep) == [0, 1, 2]
    assert sink.slept == [0.1, 0.2, 0.4] and sink.dead == []


async def test_a_refused_record_is_dead_lettered_with_the_reason_and_the_others_written():
    sink = Sink(refuse={1})
    events = [Event(encode(unsub(n))) for n in range(3)]
    assert await consume(events, UnsubscribeRecorded, sink.write, sink.dead_letter, sleep=sink.sleep) == [0, 2]
    assert sink.written == [0, 2]
    assert [(v, r.split(":")[0]) for v, r in sink.dead] == [(events[1].value, "not written")]
    assert "DataError" in sink.dead[0][1]


async def test_an_empty_or_all_undecodable_batch_writes_nothing():
    sink = Sink()
    assert await consume([Event(b"")], UnsubscribeRecorded, sink.write, sink.dead_letter) == []
    assert sink.calls == 0 and len(sink.dead) == 1


async def test_events_handed_in_together_are_written_as_one_batch_and_each_writer_waits_for_it():
    sink, counted = Sink(), []
    writer = GroupWriter(UnsubscribeRecorded, sink.write, sink.dead_letter, counted.append, within=0.01)
    events = [Event(encode(unsub(n))) for n in range(5)] + [Event(b"garbage")]
    await asyncio.gather(*(writer.write(e) for e in events))
    assert sink.calls == 1 and sink.written == [0, 1, 2, 3, 4]
    assert counted == [[0, 1, 2, 3, 4]] and [v for v, _ in sink.dead] == [b"garbage"]


async def test_a_writer_is_not_released_before_its_batch_is_written():
    sink = Sink(fail_times=2)
    writer = GroupWriter(UnsubscribeRecorded, sink.write, sink.dead_letter, lambda _: None, within=0.01)
    pending = asyncio.ensure_future(writer.write(Event(encode(unsub(7)))))
    await asyncio.sleep(0.05)  # two failed attempts, retried after 0.1 s and 0.2 s
    assert not pending.done() and sink.written == []
    await asyncio.wait_for(pending, 2)
    assert sink.written == [7]


async def test_events_arriving_while_a_batch_is_written_form_the_next_batch():
    sink = Sink()
    writer = GroupWriter(UnsubscribeRecorded, sink.write, sink.dead_letter, lambda _: None, within=0.01)
    first = asyncio.ensure_future(writer.write(Event(encode(unsub(1)))))
    await asyncio.sleep(0.02)
    await asyncio.gather(first, writer.write(Event(encode(unsub(2)))), writer.write(Event(encode(unsub(3)))))
    assert sink.calls == 2 and sink.written == [1, 2, 3]


async def test_an_error_of_the_batch_reaches_every_waiting_writer():
    sink = Sink()

    async def refused_dead_letter(event, reason):
        raise ConnectionError("kafka is gone")

    writer = GroupWriter(UnsubscribeRecorded, sink.write, refused_dead_letter, lambda _: None, within=0.01)
    results = await asyncio.gather(
        writer.write(Event(b"garbage")), writer.write(Event(encode(unsub(1)))), return_exceptions=True
    )
    assert [type(r) for r in results] == [ConnectionError, ConnectionError]
