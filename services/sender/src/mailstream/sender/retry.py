"""Retry schedule of deferred messages (KumoMTA's defaults: 20 minutes doubling, 7 days).

Attempt n (1 = first retry) waits base * 2**(n-1), at least the deferral's retry_after, at
most max_interval. A message whose next attempt would fall after first_attempt_at + max_age
expires as a soft bounce instead. The record goes to the retry tier whose delay band holds
its wait (tier i holds waits up to base * 4**i, the last tier the rest), so records within
a tier wait similar times and the tier's FIFO order is close to due order: a consumer waits
for the head's `not_before` (pausing only that partition) and never skips ahead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    base: float = 1200.0
    max_age: float = 7 * 86400.0
    max_interval: float = 7 * 86400.0
    tiers: int = 4

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        wait = self.base * 2 ** max(0, attempt - 1)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_interval)

    def tier(self, delay: float) -> int:
        """0-based index into RETRY_TIERS."""
        for index in range(self.tiers - 1):
            if delay <= self.base * 4**index:
                return index
        return self.tiers - 1

    def next_attempt(
        self, *, attempt: int, first_attempt_at: datetime, now: datetime, retry_after: float | None = None
    ) -> tuple[datetime, int] | None:
        """(not_before, tier) of the next attempt, or None when the message has expired."""
        wait = self.delay(attempt + 1, retry_after)
        not_before = now + timedelta(seconds=wait)
        if not_before > first_attempt_at + timedelta(seconds=self.max_age):
            return None
        return not_before, self.tier(wait)
