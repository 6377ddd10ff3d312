"""Writer schemas from a Confluent-compatible schema registry (GET /schemas/ids/{id}), fetched
once per (registry, id) and kept: a registered schema never changes under its id.

An unknown id (404) is the record's fault (dead letter); an unreachable registry is transient
(the batch waits and is retried, nothing is dead-lettered because the registry blinked).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import fastavro

from mailstream.core.retry import TransientError


class RegistryUnavailable(TransientError):
    """The schema registry did not answer (or answered 5xx): the batch is read again later."""


class SchemaRegistry:
    def __init__(self, *, timeout_s: float = 5.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._schemas: dict[tuple[str, int], Any] = {}

    async def schema(self, registry_url: str, schema_id: int) -> Any:
        key = (registry_url.rstrip("/"), schema_id)
        if key in self._schemas:
            return self._schemas[key]
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(f"{key[0]}/schemas/ids/{schema_id}") as reply:
                if reply.status == 404:
                    return None
                if reply.status != 200:
                    raise RegistryUnavailable(f"schema registry {key[0]} answered {reply.status}")
                body = await reply.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RegistryUnavailable(f"schema registry {key[0]}: {type(exc).__name__}: {exc}") from exc
        try:
            parsed = fastavro.parse_schema(json.loads(body["schema"]))
        except Exception:
            return None  # not an Avro schema under that id: the records naming it are dead-lettered
        self._schemas[key] = parsed
        return parsed

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
