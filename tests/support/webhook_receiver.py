"""A webhook receiver for the tests: a real aiohttp server on loopback that records every POST
(headers, raw body, whether its signature verifies with the documented snippet) and answers as
the test says: `up` (200), `failing` (500), or `down` (the port is closed: connections refused).
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from dataclasses import dataclass, field

from aiohttp import web
from webhook_snippet import load_verify

from testkit import free_port

verify = load_verify()


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    events: list[dict]
    verified: bool
    at: float = field(default_factory=time.monotonic)


class Receiver:
    def __init__(self, secrets: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.secrets = list(secrets or [])
        self.mode = "up"
        self.posts: list[Received] = []
        self.failed_posts = 0
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers.get("Mailstream-Signature", "")
        if self.mode == "failing":
            self.failed_posts += 1
            return web.Response(status=500, text="receiver failing on purpose")
        verified = bool(self.secrets) and any(verify(s, header, body) for s in self.secrets)
        self.posts.append(Received(dict(request.headers), body, json.loads(body), verified))
        return web.Response(status=200, text="ok")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.mode = "up"
        return self

    async def stop(self) -> None:
        """Closes the port: the dispatcher's connections are refused."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def events(self) -> list[dict]:
        return [e for p in self.posts for e in p.events]

    def ids(self) -> collections.Counter:
        return collections.Counter(e["event_id"] for e in self.events())

    async def wait_events(self, count: int, within: float, predicate=lambda e: True) -> list[dict]:
        deadline = time.monotonic() + within
        while True:
            found = [e for e in self.events() if predicate(e)]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.1)
