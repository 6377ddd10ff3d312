"""A small Confluent-compatible schema registry for tests: the two calls producers and the
trigger process make, in memory.

    POST /subjects/{subject}/versions   {"schema": "<Avro schema as JSON text>"} -> {"id": N}
    GET  /schemas/ids/{id}              -> {"schema": "<Avro schema as JSON text>"}   (404 unknown)

    async with SchemaRegistry() as registry:      # binds 127.0.0.1:8087 (port=0: a free port)
        schema_id = await registry.register("orders-value", schema)
        registry.url                              # http://127.0.0.1:8087

The fixed address is the one the local stack allows the trigger process to fetch from
(deploy/local/stack.sh sets MAILSTREAM_TRIGGER_REGISTRY_URLS to it): a registry anywhere else is refused.
"""

from __future__ import annotations

import collections
import io
import json
import struct
from typing import Any

import fastavro
from aiohttp import web


def wire_format(schema_id: int, schema: Any, datum: Any) -> bytes:
    """A record in the registry's wire format: magic byte 0, the 4-byte schema id, the Avro datum."""
    out = io.BytesIO()
    out.write(b"\x00" + struct.pack(">I", schema_id))
    fastavro.schemaless_writer(out, fastavro.parse_schema(schema), datum)
    return out.getvalue()


PORT = 8087


class SchemaRegistry:
    def __init__(self, port: int = PORT) -> None:
        self.port = port
        self.schemas: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.lookups: collections.Counter[int] = collections.Counter()  # schema id -> GETs
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def register(self, subject: str, schema: Any) -> int:
        text = json.dumps(schema, sort_keys=True)
        known = {t: i for i, t in self.schemas.items()}
        schema_id = known.get(text) or len(self.schemas) + 1
        self.schemas[schema_id] = text
        self.subjects.setdefault(subject, []).append(schema_id)
        return schema_id

    async def _post_version(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            fastavro.parse_schema(json.loads(body["schema"]))
        except Exception as exc:
            return web.json_response({"error_code": 42201, "message": f"Invalid schema: {exc}"}, status=422)
        return web.json_response({"id": await self.register(request.match_info["subject"], json.loads(body["schema"]))})

    async def _get_schema(self, request: web.Request) -> web.Response:
        schema_id = int(request.match_info["id"])
        self.lookups[schema_id] += 1
        schema = self.schemas.get(schema_id)
        if schema is None:
            return web.json_response({"error_code": 40403, "message": "Schema not found"}, status=404)
        return web.json_response({"schema": schema})

    async def __aenter__(self) -> SchemaRegistry:
        app = web.Application()
        app.router.add_post("/subjects/{subject}/versions", self._post_version)
        app.router.add_get(r"/schemas/ids/{id:\d+}", self._get_schema)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
