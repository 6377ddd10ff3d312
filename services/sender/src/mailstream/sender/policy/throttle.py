"""Human-readable limits parsed into strict types: `ThrottleSpec.parse("1_000/hr")`, durations like `"90m"`."""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
_SPEC = re.compile(r"^\s*([0-9][0-9_]*)\s*/\s*([a-z]+)\s*(?:,\s*max_burst\s*=\s*([0-9][0-9_]*)\s*)?$")
_DURATION = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?)\s*([a-z]+)\s*$")


class PolicyError(ValueError):
    """The sending policy is invalid; the message says where and why."""


@dataclass(frozen=True, slots=True)
class ThrottleSpec:
    """`limit` messages (or connections) per `period` seconds, with at most `max_burst` at once."""

    limit: int
    period: float
    max_burst: int = 1

    @classmethod
    def parse(cls, text: str) -> ThrottleSpec:
        match = _SPEC.match(str(text).lower())
        if not match:
            raise PolicyError(f"{text!r} is not a rate like '100/s', '1_000/hr' or '10/min,max_burst=5'")
        limit, unit, burst = int(match[1]), match[2], match[3]
        if unit not in _UNITS:
            raise PolicyError(f"{text!r}: unknown unit {unit!r} (use s, min, h or d)")
        if limit <= 0:
            raise PolicyError(f"{text!r}: the limit must be positive")
        max_burst = int(burst) if burst is not None else 1
        if max_burst <= 0:
            raise PolicyError(f"{text!r}: max_burst must be positive")
        return cls(limit, float(_UNITS[unit]), max_burst)

    @property
    def interval(self) -> float:
        """Seconds between two permits at the steady rate."""
        return self.period / self.limit

    @property
    def per_second(self) -> float:
        return self.limit / self.period

    def __str__(self) -> str:
        return f"{self.limit}/{self.period:g}s"


def parse_duration(text: str | int | float) -> float:
    """Seconds from '30s', '90m', '2h', '7d' (a bare number is seconds)."""
    if isinstance(text, int | float):
        seconds = float(text)
    else:
        match = _DURATION.match(str(text).lower())
        if not match or match[2] not in _UNITS:
            raise PolicyError(f"{text!r} is not a duration like '30s', '90m', '2h' or '7d'")
        seconds = float(match[1].replace("_", "")) * _UNITS[match[2]]
    if seconds <= 0:
        raise PolicyError(f"{text!r}: a duration must be positive")
    return seconds
