"""The retry schedule (policy as data, published in docs/webhooks.md): the delay before each retry
of an event that an endpoint did not take. After the last delay's retry fails the event is parked.

The default doubles from 1 minute, is capped at 8 hours, and ends exactly 24 hours after the
first attempt. MAILSTREAM_WEBHOOK_RETRY_DELAYS replaces it (seconds, comma-separated; the tests
use a schedule of seconds).
"""

from __future__ import annotations

from dataclasses import dataclass

CAP_S = 8 * 3600.0
WINDOW_S = 24 * 3600.0
DEFAULT_DELAYS_S: tuple[float, ...] = (
    60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 28800, 26940,
)  # fmt: skip
assert sum(DEFAULT_DELAYS_S) == WINDOW_S


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    delays_s: tuple[float, ...] = DEFAULT_DELAYS_S

    @classmethod
    def parse(cls, text: str) -> RetrySchedule:
        """From "60,120,240" (seconds); empty = the default. Each delay > 0 and <= 8 h, at most 24 h in all."""
        if not text.strip():
            return cls()
        try:
            delays = tuple(float(part) for part in text.split(",") if part.strip())
        except ValueError:
            raise ScheduleError(f"retry delays {text!r}: seconds, comma-separated (e.g. 60,120,240)") from None
        if not delays:
            raise ScheduleError("retry delays: at least one")
        if any(d <= 0 or d > CAP_S for d in delays):
            raise ScheduleError(f"retry delays {text!r}: each more than 0 and at most {CAP_S:.0f} s (8 h)")
        if sum(delays) > WINDOW_S:
            raise ScheduleError(f"retry delays {text!r}: at most {WINDOW_S:.0f} s (24 h) in all")
        return cls(delays)

    @property
    def attempts(self) -> int:
        """Attempts of an event in all: the first and one per delay."""
        return len(self.delays_s) + 1

    def delay_after(self, failed_attempts: int) -> float | None:
        """Seconds until the next attempt after `failed_attempts` failed ones; None: park the event."""
        if failed_attempts < 1:
            raise ValueError("failed_attempts starts at 1")
        if failed_attempts > len(self.delays_s):
            return None
        return self.delays_s[failed_attempts - 1]
