"""Warm-up decisions, pure: which period a send falls in, what that period's cap is, and how a
request for sends is granted against what the period already used.

The position itself (first use, the current period's count) is stored in PostgreSQL by
`adapters/warmup_positions.py`, which applies `grant()` atomically in one statement, so every
sender process draws on the same cap and a restart continues the curve.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

from mailstream.sender.policy import Source


@dataclass(frozen=True, slots=True)
class Window:
    """One warm-up period of one IP: [start, end) in UTC, and the sends it allows."""

    start: datetime
    end: datetime
    cap: int

    def seconds_left(self, now: datetime) -> float:
        return max(0.0, (self.end - now).total_seconds())


def window_of(source: Source, *, first_used_on: date | None, now: datetime) -> Window | None:
    """The period `now` is in and its cap, or None when the IP is warm (or never warms).

    Periods are wall-clock hours or UTC days, the same for every process; the cap is the
    schedule's entry for the IP's age in days (see Source.warmup_start for day 0)."""
    if source.warmup is None:
        return None
    today = now.astimezone(UTC).date()
    cap = source.warmup_cap(today, first_used_on)
    if cap is None:
        return None
    period = source.warmup.period
    start = int(now.timestamp() // period) * period
    return Window(
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(start, UTC) + timedelta(seconds=period),
        cap=cap,
    )


@dataclass(frozen=True, slots=True)
class Position:
    """What an IP used of its current period."""

    window_start: datetime
    sent: int


def grant(position: Position | None, window: Window, wanted: int) -> tuple[Position, int]:
    """(the new position, sends granted): at most `wanted`, never past the cap.

    A position from an earlier period rolls over to `window` (count from zero). A position from
    a later period (another process whose clock is ahead already moved on) is kept and counted
    against: the two periods' sends then share one cap, never more."""
    if position is None or position.window_start < window.start:
        position = Position(window.start, 0)
    granted = min(wanted, max(0, window.cap - position.sent))
    return Position(position.window_start, position.sent + granted), granted


class WarmupPositions(Protocol):
    """The stored warm-up positions, shared by all sender processes."""

    async def first_used_on(self, address: str) -> date | None:
        """The IP's recorded first use, or None if it never sent."""
        ...

    async def take(self, address: str, window: Window, *, today: date) -> bool:
        """One send in `window` if its cap allows (True); records `today` as first use if none."""
        ...
