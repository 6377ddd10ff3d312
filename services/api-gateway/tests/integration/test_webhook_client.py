"""The webhook client (aiohttp) against a real HTTP server on loopback: a redirect is not followed,
an endpoint that does not answer in time fails with the timeout, at most max_response_bytes of an
answer are read, and loopback targets are refused (IP literal and a name) unless allowed."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from mailstream.gateway.webhooks.client import WebhookClient
from mailstream.gateway.webhooks.url_policy import parse_networks
from testkit import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def server():
    hits: list[str] = []

    async def ok(request: web.Request) -> web.Response:
        hits.append("ok")
        return web.Response(text="fine")

    async def moved(request: web.Request) -> web.Response:
        hits.append("moved")
        raise web.HTTPFound("/ok")

    async def slow(request: web.Request) -> web.Response:
        hits.append("slow")
        await asyncio.sleep(1.5)
        return web.Response(text="late")

    async def big(request: web.Request) -> web.Response:
        hits.append("big")
        return web.Response(body=b"x" * 5_000_000)

    app = web.Application()
    for path, handler in (("/ok", ok), ("/moved", moved), ("/slow", slow), ("/big", big)):
        app.router.add_post(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", f"http://localhost:{port}", hits
    await runner.cleanup()


async def test_redirects_timeouts_bounded_reads_and_the_target_policy(server):
    base, by_name, hits = server
    client = WebhookClient(allowed=parse_networks(["127.0.0.0/8"]), timeout_s=0.5, max_response_bytes=1024)
    refusing = WebhookClient(timeout_s=0.5, max_response_bytes=1024)
    try:
        ok = await client.post(f"{base}/ok", b"[]", {})
        assert ok.ok and ok.status == 200 and ok.excerpt == "fine"

        moved = await client.post(f"{base}/moved", b"[]", {})
        assert not moved.ok and moved.status == 302 and "redirects are not followed" in moved.error
        assert hits.count("ok") == 1  # the Location was not fetched

        slow = await client.post(f"{base}/slow", b"[]", {})
        assert not slow.ok and slow.status is None and "no response within 0.5 s" in slow.error
        assert slow.duration_ms < 1400

        big = await client.post(f"{base}/big", b"[]", {})
        assert big.ok and len(big.excerpt) <= 1024

        before = len(hits)
        for url in (f"{base}/ok", f"{by_name}/ok"):
            refused = await refusing.post(url, b"[]", {})
            assert not refused.ok and refused.error.startswith("target refused"), refused
            assert "loopback" in refused.error
        assert len(hits) == before  # nothing reached the server
    finally:
        await client.close()
        await refusing.close()
