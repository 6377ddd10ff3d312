"""What routes need: the pool, the Kafka link, and the caller's account from its API key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from mailstream.gateway.adapters import store
from mailstream.gateway.errors import ApiError
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.schemas import SendRequested, encode
from mailstream.schemas.topics import SEND_REQUESTED


@dataclass
class Dependencies:
    pool: asyncpg.Pool
    kafka: KafkaLink

    async def publish(self, event: SendRequested) -> None:
        # acks=all + idempotent producer: this returns once every in-sync replica has the record.
        await self.kafka.send(SEND_REQUESTED.name, encode(event), key=event.to.lower().encode())


def deps_of(request: Request) -> Dependencies:
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
    found = await store.account_for_key(deps_of(request).pool, token.strip())
    if found is None:
        raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid or revoked")
    return found


Account = Annotated[int, Depends(account_id)]
