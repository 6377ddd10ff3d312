"""Batcher: who shares a flush, when batches start, and how results and errors reach callers."""

import asyncio

import pytest

from mailstream.core.batching import Batcher


class Recorder:
    def __init__(self, delay: float = 0.01) -> None:
        self.calls: list[list[int]] = []
        self.delay = delay

    async def __call__(self, items):
        self.calls.append(list(items))
        await asyncio.sleep(self.delay)
        return [i * 10 if i >= 0 else ValueError(f"bad {i}") for i in items]


async def test_a_lone_caller_is_served_at_once_and_alone():
    flush = Recorder()
    batcher = Batcher(flush, max_size=100)
    assert await batcher.submit(1) == 10
    assert flush.calls == [[1]]


async def test_callers_arriving_during_a_flight_share_the_next_flush():
    flush = Recorder(delay=0.05)
    batcher = Batcher(flush, max_size=100)
    first = asyncio.create_task(batcher.submit(1))
    await asyncio.sleep(0.01)  # the first batch is in flight
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(2, 7)]
    assert await asyncio.gather(first, *rest) == [10, 20, 30, 40, 50, 60]
    assert flush.calls == [[1], [2, 3, 4, 5, 6]]


async def test_batches_are_at_most_max_size():
    flush = Recorder()
    batcher = Batcher(flush, max_size=3, max_in_flight=4)
    await asyncio.gather(*(batcher.submit(i) for i in range(7)))
    assert sorted(len(c) for c in flush.calls) == [1, 3, 3]


async def test_linger_gathers_callers_before_the_first_flush():
    flush = Recorder()
    batcher = Batcher(flush, max_size=100, linger=0.02)
    await asyncio.gather(batcher.submit(1), batcher.submit(2))
    assert flush.calls == [[1, 2]]


async def test_an_exception_result_fails_only_its_caller():
    batcher = Batcher(Recorder(), max_size=10, linger=0.01)
    results = await asyncio.gather(batcher.submit(1), batcher.submit(-1), return_exceptions=True)
    assert results[0] == 10 and isinstance(results[1], ValueError)


async def test_a_failed_flush_fails_every_caller_of_that_batch_only():
    async def flush(items):
        if 0 in items:
            raise ConnectionError("down")
        return items

    batcher = Batcher(flush, max_size=2, max_in_flight=2)
    results = await asyncio.gather(*(batcher.submit(i) for i in range(4)), return_exceptions=True)
    assert isinstance(results[0], ConnectionError) and isinstance(results[1], ConnectionError)
    assert results[2:] == [2, 3]


async def test_drain_finishes_what_waits():
    flush = Recorder(delay=0.02)
    batcher = Batcher(flush, max_size=100, linger=5)
    tasks = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    await asyncio.sleep(0)
    await batcher.drain()
    assert [t.result() for t in tasks] == [0, 10, 20]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Batcher(Recorder(), max_size=0)
