"""What routes need: the pool, the Kafka link, and the caller's account from its API key."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from mailstream.gateway.adapters import store
from mailstream.gateway.errors import ApiError
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.keys import hash_api_key
from mailstream.schemas import SendRequested, encode
from mailstream.schemas.topics import SEND_REQUESTED


class KeyCache:
    """API key hash -> account for a few seconds, so that a burst of sends does not look the
    same key up every time. A key revoked through this process is dropped at once; another
    replica stops accepting it within ttl_s."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s, self.max_entries = ttl_s, max_entries
        self.entries: dict[bytes, tuple[int, float]] = {}

    def get(self, key_hash: bytes) -> int | None:
        hit = self.entries.get(key_hash)
        if hit is None or hit[1] < time.monotonic():
            return None
        return hit[0]

    def put(self, key_hash: bytes, account_id: int) -> None:
        if self.ttl_s <= 0:
            return
        if len(self.entries) >= self.max_entries:
            self.entries.clear()
        self.entries[key_hash] = (account_id, time.monotonic() + self.ttl_s)

    def clear(self) -> None:
        self.entries.clear()


@dataclass
class Dependencies:
    pool: asyncpg.Pool
    kafka: KafkaLink
    keys: KeyCache = field(default_factory=lambda: KeyCache(ttl_s=2.0))
    require_sending_domain: bool = False

    async def publish(self, event: SendRequested) -> None:
        # acks=all + idempotent producer: this returns once every in-sync replica has the record.
        await self.kafka.send(SEND_REQUESTED.name, encode(event), key=event.to.lower().encode())


async def deps_of(request: Request) -> Dependencies:
    return request.app.state.deps


Deps = Annotated[Dependencies, Depends(deps_of)]


async def account_id(request: Request) -> int:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found: send 'Authorization: Bearer <API key>'",
        )
    deps: Dependencies = request.app.state.deps
    key_hash = hash_api_key(token.strip())
    found = deps.keys.get(key_hash)
    if found is None:
        found = await store.account_for_key_hash(deps.pool, key_hash)
        if found is not None:
            deps.keys.put(key_hash, found)
    if found is None:
        raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid or revoked")
    return found


Account = Annotated[int, Depends(account_id)]
