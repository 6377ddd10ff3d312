"""Noticing records a Faust worker fetched but never handed to its agents.

The committed offset of a partition is the next record to handle. When later records are
acknowledged but that one is neither acknowledged nor in flight, the worker skipped it: its
commit is held back for good and the record is never handled. Pure bookkeeping; the consumer
(core.faust_runtime) seeks back.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

# Long enough for a record fetched a moment ago to reach an agent; short beside a send's life.
SKIPPED_AFTER_SECONDS = 10.0


@dataclass
class SkippedRecords:
    after: float
    clock: Callable[[], float] = time.monotonic
    _since: dict[Hashable, tuple[int, float]] = field(default_factory=dict)
    tasks: set[asyncio.Future] = field(default_factory=set)  # seeks under way (the loop keeps weak refs)

    def seen(self, tp: Hashable, committed: int, first_acked: int, in_flight: Iterable[int]) -> bool:
        """True once the records from `committed` to `first_acked` have been neither acknowledged
        nor in flight for `after` seconds; the caller then reads them again (and this starts over)."""
        if any(committed <= offset < first_acked for offset in in_flight):
            self._since.pop(tp, None)
            return False
        now = self.clock()
        offset, since = self._since.get(tp, (None, now))
        if offset != committed:
            self._since[tp] = (committed, now)
            return False
        if now - since < self.after:
            return False
        del self._since[tp]
        return True

    def forget_task(self, task: asyncio.Future) -> None:
        self.tasks.discard(task)
