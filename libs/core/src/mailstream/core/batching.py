"""Sharing work between concurrent callers: `Batcher` gathers the items that arrive together and
hands them to one `flush` (one statement, one commit, one produce request), then answers each
caller with its own result.

A batch starts when a flight slot is free and either `max_size` items wait or the oldest has
waited `linger` seconds. With `linger=0` and one slot this is group commit: a lone caller is
served at once, and whoever arrives while a batch is in flight goes in the next one together.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K")
R = TypeVar("R")

# flush returns one result per item, in order; an Exception instance fails only its own item.
Flush = Callable[[list[K]], Awaitable[Sequence[R | BaseException]]]


class Batcher(Generic[K, R]):
    def __init__(self, flush: Flush, *, max_size: int, linger: float = 0.0, max_in_flight: int = 1) -> None:
        if max_size < 1 or max_in_flight < 1 or linger < 0:
            raise ValueError("max_size and max_in_flight must be positive, linger not negative")
        self._flush = flush
        self.max_size, self.linger, self.max_in_flight = max_size, linger, max_in_flight
        self._items: list[K] = []
        self._futures: list[asyncio.Future[R]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._flights: set[asyncio.Task[None]] = set()  # the loop keeps only weak references
        self.batches = 0  # flushes started (for tests and metrics)

    @property
    def waiting(self) -> int:
        return len(self._items)

    async def submit(self, item: K) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._items.append(item)
        self._futures.append(future)
        if len(self._items) >= self.max_size:
            self._start()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._start)
        return await future

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._items and len(self._flights) < self.max_in_flight:
            items, futures = self._items[: self.max_size], self._futures[: self.max_size]
            del self._items[: self.max_size], self._futures[: self.max_size]
            flight = asyncio.get_running_loop().create_task(self._run(items, futures))
            self._flights.add(flight)
            flight.add_done_callback(self._landed)
            self.batches += 1

    def _landed(self, flight: asyncio.Task[None]) -> None:
        self._flights.discard(flight)
        if self._items and self._timer is None:
            self._start()  # everything that waited for the slot: it waited at least a flight's time

    async def _run(self, items: list[K], futures: list[asyncio.Future[R]]) -> None:
        try:
            results = await self._flush(items)
            if len(results) != len(items):
                raise RuntimeError(f"flush returned {len(results)} results for {len(items)} items")
        except BaseException as exc:  # every caller of this batch gets it
            for f in futures:
                if not f.done():
                    f.set_exception(exc)
                    f.exception()  # retrieved: a caller that went away must not log it
            if not isinstance(exc, Exception):
                raise
            return
        for f, result in zip(futures, results, strict=True):
            if f.done():
                continue
            if isinstance(result, BaseException):
                f.set_exception(result)
                f.exception()
            else:
                f.set_result(result)

    async def drain(self) -> None:
        """Waits for the batches in flight and the items waiting (a graceful stop)."""
        while self._items or self._flights:
            self._start()
            if self._flights:
                await asyncio.gather(*self._flights, return_exceptions=True)
