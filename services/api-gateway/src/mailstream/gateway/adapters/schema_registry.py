"""Writer schemas from a Confluent-compatible schema registry (GET /schemas/ids/{id}), fetched
once per (registry, id) and kept: a registered schema never changes under its id.

An unknown id (404) is the record's fault (dead letter); an unreachable registry is transient
(the batch waits and is retried, nothing is dead-lettered because the registry blinked).

The URL is the customer's, so the fetch is a server-side request from inside the deployment: only a
registry the operator allows is asked (MAILSTREAM_TRIGGER_REGISTRY_URLS, checked here again before
every fetch), a redirect is not followed, and an answer is read up to MAX_BODY bytes only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aiohttp
import fastavro

from mailstream.core.retry import MailstreamError, TransientError

MAX_BODY = 1024 * 1024  # a registered schema is a few kB; a larger answer is not a registry's


class RegistryUnavailable(TransientError):
    """The schema registry did not answer (or answered 5xx, a redirect, a body too large): the batch
    is read again later."""


class RegistryNotAllowed(MailstreamError):
    """The URL is not under an allowed registry: nothing is fetched (the runner does not run such a rule)."""


async def _bounded_body(reply: aiohttp.ClientResponse, registry: str) -> bytes:
    if (reply.content_length or 0) > MAX_BODY:
        raise RegistryUnavailable(f"schema registry {registry}: an answer of {reply.content_length} bytes")
    body = bytearray()
    async for chunk in reply.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            raise RegistryUnavailable(f"schema registry {registry}: an answer over {MAX_BODY} bytes")
    return bytes(body)


class SchemaRegistry:
    def __init__(self, *, allowed: Callable[[str], bool], timeout_s: float = 5.0) -> None:
        self._allowed = allowed
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._schemas: dict[tuple[str, int], Any] = {}

    async def schema(self, registry_url: str, schema_id: int) -> Any:
        key = (registry_url.rstrip("/"), schema_id)
        if key in self._schemas:
            return self._schemas[key]
        if not self._allowed(registry_url):
            raise RegistryNotAllowed(f"schema registry {key[0]} is not allowed (MAILSTREAM_TRIGGER_REGISTRY_URLS)")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.get(f"{key[0]}/schemas/ids/{schema_id}", allow_redirects=False) as reply:
                if reply.status == 404:
                    return None
                if reply.status != 200:
                    raise RegistryUnavailable(
                        f"schema registry {key[0]} answered {reply.status} (redirects are not followed)"
                    )
                raw = await _bounded_body(reply, key[0])
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RegistryUnavailable(f"schema registry {key[0]}: {type(exc).__name__}: {exc}") from exc
        try:
            parsed = fastavro.parse_schema(json.loads(json.loads(raw)["schema"]))
        except Exception:
            return None  # not an Avro schema under that id: the records naming it are dead-lettered
        self._schemas[key] = parsed
        return parsed

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
