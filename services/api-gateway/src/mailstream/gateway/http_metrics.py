"""Requests answered and their latency, by route template (never the raw path: ids would make a
series per object) and status: the gateway's error-rate alert and its dashboard row read these."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram

REQUESTS = Counter("mailstream_gateway_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
SECONDS = Histogram(
    "mailstream_gateway_http_request_seconds",
    "Time to answer an HTTP request",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
UNMATCHED = "unmatched"  # a path no route knows (404s of scanners, typos)


class HttpMetrics:
    """Pure ASGI middleware (no per-request objects beyond the status it notes)."""

    def __init__(self, app) -> None:
        self.app = app
        self._children: dict[tuple[str, str, int], tuple] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # an exception that escapes every handler answers 500

        async def noting_status(message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            route = getattr(scope.get("route"), "path", UNMATCHED)
            key = (scope["method"], route, status)
            children = self._children.get(key)
            if children is None:
                children = (REQUESTS.labels(key[0], route, str(status)), SECONDS.labels(route))
                self._children[key] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
