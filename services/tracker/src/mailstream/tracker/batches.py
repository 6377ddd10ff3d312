"""Consuming a topic a batch at a time: the records of a batch are decoded (undecodable ones
dead-lettered with the reason), written with one statement per table, and only then acknowledged.

While PostgreSQL is unreachable the same batch is retried (nothing is acknowledged, so a kill
loses nothing); a record PostgreSQL or the handler refuses (a malformed id) is found by writing
the batch's records one by one, and dead-lettered with the reason while the others are written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg

from mailstream.schemas import DecodeError, decode

log = logging.getLogger(__name__)

# Errors that belong to a record, not to the database's availability: retrying cannot help.
BAD_RECORD = (ValueError, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
MAX_RETRY_DELAY = 5.0

DeadLetter = Callable[[Any, str], Awaitable[None]]


async def consume(
    events: Sequence[Any],
    record_type: type,
    write: Callable[[list], Awaitable[list]],
    dead_letter: DeadLetter,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list:
    """Decodes and writes one batch of events; returns what `write` returned for the records written."""
    records = []
    for event in events:
        try:
            records.append((event, decode(event.value, record_type)))
        except DecodeError as exc:
            await dead_letter(event, str(exc))
    return await _write(records, write, dead_letter, sleep)


async def _write(records: list[tuple[Any, Any]], write, dead_letter: DeadLetter, sleep) -> list:
    if not records:
        return []
    try:
        return await retrying(lambda: write([r for _, r in records]), sleep)
    except BAD_RECORD as exc:
        if len(records) == 1:
            event, _ = records[0]
            await dead_letter(event, f"not written: {type(exc).__name__}: {exc}")
            return []
    result: list = []
    for one in records:  # find the refused record(s); the others are written (the writes are idempotent)
        result += await _write([one], write, dead_letter, sleep)
    return result


async def retrying(attempt: Callable[[], Awaitable[Any]], sleep=asyncio.sleep) -> Any:
    """Runs `attempt` until it succeeds or fails for a reason of the record (BAD_RECORD, raised)."""
    delay = 0.1
    while True:
        try:
            return await attempt()
        except BAD_RECORD:
            raise
        except Exception:
            log.exception("writing a batch failed; retrying in %.1f s", delay)
            await sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)


class GroupWriter:
    """Writes the events that several actors hand in at about the same time as one batch.

    Each actor holds one event and waits in `write` until the batch that carries it is written
    (or the event dead-lettered), so Faust still acknowledges an event only once it is written:
    the batching of `noack_take` without taking acknowledgements out of Faust's hands.
    """

    def __init__(
        self,
        record_type: type,
        write: Callable[[list], Awaitable[list]],
        dead_letter: DeadLetter,
        on_written: Callable[[list], None],
        *,
        within: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.record_type, self.write_records, self.dead_letter = record_type, write, dead_letter
        self.on_written, self.within, self.sleep = on_written, within, sleep
        self._waiting: list[tuple[Any, asyncio.Future]] = []
        self._writing: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    async def write(self, event: Any) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        if len(self._waiting) == 1:  # the first of a batch writes it, after the others had `within` to join
            task = asyncio.get_running_loop().create_task(self._write_soon())
            self._writing.add(task)
            task.add_done_callback(self._writing.discard)
        await done

    async def _write_soon(self) -> None:
        await asyncio.sleep(self.within)
        batch, self._waiting = self._waiting, []
        try:
            written = await consume(
                [e for e, _ in batch], self.record_type, self.write_records, self.dead_letter, sleep=self.sleep
            )
            self.on_written(written)
        except BaseException as exc:  # each waiting actor gets the error (a dead letter Kafka refused)
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for _, done in batch:
            if not done.done():
                done.set_result(None)
