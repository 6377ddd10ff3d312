"""The trigger process's schema registry client against a real HTTP server on loopback: it reads a
schema, follows no redirect and reads no answer over 1 MB."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from mailstream.gateway.adapters.schema_registry import MAX_BODY, RegistryUnavailable, SchemaRegistry

SCHEMA = {"type": "record", "name": "Order", "fields": [{"name": "order_id", "type": "string"}]}


@pytest.fixture
async def server():
    hits: list[str] = []

    async def schema(request: web.Request) -> web.StreamResponse:
        hits.append(request.path)
        if request.match_info["id"] == "1":
            return web.json_response({"schema": json.dumps(SCHEMA)})
        if request.match_info["id"] == "2":
            raise web.HTTPFound("/internal/secret")
        response = web.StreamResponse()  # 3: a huge answer, sent in chunks without a length
        await response.prepare(request)
        for _ in range(MAX_BODY // 65536 + 2):
            await response.write(b" " * 65536)
        return response

    async def secret(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"schema": json.dumps(SCHEMA)})

    app = web.Application()
    app.router.add_get(r"/schemas/ids/{id:\d+}", schema)
    app.router.add_get("/internal/secret", secret)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield url, hits
    await runner.cleanup()


async def test_a_schema_is_read_but_a_redirect_and_a_huge_answer_are_not(server):
    url, hits = server
    registry = SchemaRegistry(allowed=lambda u: u.startswith(url))
    try:
        assert (await registry.schema(url, 1))["name"] == "Order"
        with pytest.raises(RegistryUnavailable, match="302"):
            await registry.schema(url, 2)
        assert "/internal/secret" not in hits
        with pytest.raises(RegistryUnavailable, match="over 1048576 bytes"):
            await registry.schema(url, 3)
    finally:
        await registry.close()
