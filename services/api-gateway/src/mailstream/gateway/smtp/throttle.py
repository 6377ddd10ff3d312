"""Failed SMTP AUTH attempts per client address, in a sliding window: past the limit, refuse.

The gateway counts them in PostgreSQL (adapters/auth_failures.py), shared by its replicas; this
in-process ledger has the same `claim` / `release` and the same rules, for one process."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

MAX_ADDRESSES = 100_000  # bounds memory under a spray of addresses


class FailureLedger(Protocol):
    async def claim(self, address: str) -> float:
        """0: go on, the attempt counted as failed until released; else the seconds to wait."""

    async def release(self, address: str) -> None:
        """Takes back the address's latest claim: its attempt succeeded."""


# Hand-written: `limits` is not installed (no new dependency), and its moving window cannot take back one hit (forgive).
class AuthThrottle:
    """An attempt counts as failed while it is checked (`failed`, then `forgive` on success), so
    that parallel guesses cannot all pass the limit before any of them has failed."""

    def __init__(self, *, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures, self.window_s, self.clock = max_failures, window_s, clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str) -> deque[float]:
        now = self.clock()
        q = self._failures.get(address)
        if q is None:
            return deque()
        while q and now - q[0] >= self.window_s:
            q.popleft()
        if not q:
            del self._failures[address]
        return q

    def retry_after(self, address: str) -> float:
        """0 when the address may try; else the seconds until its oldest failure leaves the window."""
        q = self._recent(address)
        if len(q) < self.max_failures:
            return 0.0
        return max(0.0, self.window_s - (self.clock() - q[0]))

    def failed(self, address: str) -> None:
        self._recent(address)
        self._failures.setdefault(address, deque()).append(self.clock())
        if len(self._failures) > MAX_ADDRESSES:
            self._failures.pop(next(iter(self._failures)))

    async def claim(self, address: str) -> float:
        wait = self.retry_after(address)
        if wait == 0:
            self.failed(address)
        return wait

    async def release(self, address: str) -> None:
        self.forgive(address)

    def forgive(self, address: str) -> None:
        """Takes back the latest failure: the attempt it counted succeeded."""
        q = self._failures.get(address)
        if q:
            q.pop()
