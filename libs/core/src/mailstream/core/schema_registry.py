"""Confluent's wire format on our topics, with a schema registry (MAILSTREAM_SCHEMA_REGISTRY_URL).

At start, a process that writes registers each topic's current value schema under the subject
`<topic>-value` (TopicNameStrategy, what Kafka Connect, ksqlDB and kcat look up) and writes
every record as magic byte 0 + schema id + Avro body. Records of either format are read: ids
not seen yet are fetched from the registry once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from typing import Any

import aiohttp

from mailstream.schemas.codec import codec, load_schema
from mailstream.schemas.topics import TOPICS

log = logging.getLogger("mailstream.core.schema_registry")
CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
FETCH_TIMEOUT_S = 5.0


class RegistryRefused(RuntimeError):
    """The registry refused a schema (incompatible with a subject's earlier versions, or invalid)."""


def subject(topic: str) -> str:
    return f"{topic}-value"


async def use_schema_registry(url: str, *, deadline_s: float = 60.0) -> None:
    """Register our schemas at `url` and write Confluent's format from now on (no URL: keep
    writing single-object encoding). Waits up to `deadline_s` for the registry to answer."""
    if not url:
        return
    base = url.rstrip("/")
    ids: dict[type, int] = {}
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        for topic in TOPICS:
            schema = json.dumps(load_schema(topic.value_type))
            while True:
                try:
                    ids[topic.value_type] = await _register(http, base, subject(topic.name), schema)
                    break
                except (aiohttp.ClientError, TimeoutError) as exc:
                    if loop.time() > until:
                        raise
                    log.warning("schema registry %s not reachable (%s); retrying", base, exc)
                    await asyncio.sleep(1)
    codec.use_registry(ids, fetch_schema=lambda schema_id: fetch_schema(base, schema_id))
    log.info("writing Confluent's wire format with schema registry %s (ids %s)", base, sorted(set(ids.values())))


def read_with_schema_registry(url: str) -> None:
    """Readers only (`mailstream events tail|export`): resolve Confluent-format records' ids at `url`."""
    if url:
        codec.use_registry({}, fetch_schema=lambda schema_id: fetch_schema(url.rstrip("/"), schema_id))


async def _register(http: aiohttp.ClientSession, base: str, name: str, schema: str) -> int:
    async with http.post(
        f"{base}/subjects/{name}/versions", json={"schema": schema}, headers={"Content-Type": CONTENT_TYPE}
    ) as response:
        body = await response.json(content_type=None)
        if response.status != 200:
            raise RegistryRefused(f"the schema registry refused {name}'s schema ({response.status}): {body}")
        return int(body["id"])


def fetch_schema(base: str, schema_id: int) -> dict[str, Any]:
    """The schema a registry id names. Blocking on purpose: it runs once per id a process has not
    seen (a newer producer's schema), from the synchronous decoder."""
    with urllib.request.urlopen(f"{base}/schemas/ids/{schema_id}", timeout=FETCH_TIMEOUT_S) as response:
        return json.loads(json.loads(response.read())["schema"])
