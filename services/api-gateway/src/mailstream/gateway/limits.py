"""Per-key request limits: a fixed window per API key, counted in this process's memory (no
database round trip). Pure apart from the clock it is given.

HubSpot counts requests in fixed windows ("ten-secondly") and answers the window's figures in
X-HubSpot-RateLimit-Max / -Remaining / -Interval-Milliseconds; past the limit, 429 RATE_LIMITS
with Retry-After. A key's limit is its own (api_keys.rate_limit) or the setting
MAILSTREAM_API_RATE_LIMIT. Each gateway replica counts its own requests: N replicas behind a
balancer let a key make up to N times its limit.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from cachetools import TTLCache

_SPEC = re.compile(r"^\s*([0-9][0-9_]*)\s*/\s*([0-9]*)\s*(ms|s|sec|m|min|h|hr)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "hr": 3_600_000}


@dataclass(frozen=True, slots=True)
class RateSpec:
    """At most `limit` requests per `interval_ms`: "100/10s", "1_000/min", "50/s"."""

    limit: int
    interval_ms: int

    @classmethod
    def parse(cls, text: str) -> RateSpec:
        m = _SPEC.match(text)
        if m is None:
            raise ValueError(f"rate limit {text!r}: write it LIMIT/[N]UNIT, e.g. 100/10s, 1000/min (ms, s, m, h)")
        limit, count, unit = int(m[1].replace("_", "")), int(m[2] or 1), m[3]
        if limit < 1 or count < 1:
            raise ValueError(f"rate limit {text!r}: the limit and the interval must be at least 1")
        return cls(limit, count * _UNIT_MS[unit])

    def __str__(self) -> str:
        ms = self.interval_ms
        interval = f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"
        return f"{self.limit}/{interval}"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    spec: RateSpec
    remaining: int
    retry_after_s: int  # seconds until the window ends (whole, at least 1), meaningful when not allowed

    def headers(self) -> dict[str, str]:
        """HubSpot's rate-limit headers (and Retry-After when refused)."""
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.spec.interval_ms),
            "X-HubSpot-RateLimit-Max": str(self.spec.limit),
            "X-HubSpot-RateLimit-Remaining": str(self.remaining),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


class RateLimiter:
    """Fixed windows per key id; the windows of keys not seen for a while are forgotten."""

    def __init__(self, *, default: RateSpec, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.default, self.clock = default, clock
        # key id -> [window start (ms), requests counted in it]
        self.windows: TTLCache[int, list] = TTLCache(maxsize=max_keys, ttl=86_400, timer=clock)

    def take(self, key_id: int, spec: RateSpec | None = None) -> Verdict:
        spec = spec or self.default
        now_ms = self.clock() * 1000
        start = now_ms - now_ms % spec.interval_ms
        window = self.windows.get(key_id)
        if window is None or window[0] != start:
            window = self.windows[key_id] = [start, 0]
        if window[1] >= spec.limit:
            retry = max(1, math.ceil((start + spec.interval_ms - now_ms) / 1000))
            return Verdict(False, spec, 0, retry)
        window[1] += 1
        return Verdict(True, spec, spec.limit - window[1], 0)
