"""What routes need: the pool, the Kafka link, the send acceptor, the caches, the domain settings,
and the caller's account from its API key."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
from fastapi import Depends, Request

from mailstream.gateway.adapters import store
from mailstream.gateway.adapters.accepting import PgAcceptStore
from mailstream.gateway.adapters.invalidation import announce
from mailstream.gateway.caches import CHANNEL, KEYS, Caches, email_changed
from mailstream.gateway.domain_handlers import DomainService
from mailstream.gateway.errors import ApiError
from mailstream.gateway.handlers import Acceptor
from mailstream.gateway.kafka_link import KafkaLink
from mailstream.gateway.keys import hash_api_key


@dataclass
class Dependencies:
    pool: asyncpg.Pool
    kafka: KafkaLink
    caches: Caches = field(default_factory=lambda: Caches(api_key_ttl_s=2.0))
    require_sending_domain: bool = False
    acceptor: Acceptor | None = None
    domains: DomainService | None = None

    def __post_init__(self) -> None:
        if self.acceptor is None:
            self.acceptor = Acceptor(PgAcceptStore(self.pool), self.kafka.send_all, self.caches)
        if self.domains is None:
            self.domains = DomainService(self.pool)

    async def keys_changed(self) -> None:
        """An API key was revoked: this process stops accepting it at once, the others on notice."""
        self.caches.forget(KEYS)
        await announce(self.pool, CHANNEL, KEYS)

    async def email_changed(self, email_id: int) -> None:
        """An email's current version or state changed: no send is accepted with the old facts."""
        message = email_changed(email_id)
        self.caches.forget(message)
        await announce(self.pool, CHANNEL, message)


async def deps_of(request: Request) -> Dependencies:
    return request.app.state.deps


Deps = Annotated[Dependencies, Depends(deps_of)]


async def account_id(request: Request) -> int:
    return await account_for_header(request.app.state.deps, request.headers.get("authorization", ""))


def bearer_key_hash(header: str) -> bytes:
    """The hash of the API key in an `Authorization: Bearer <API key>` header, or ApiError 401."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "INVALID_AUTHENTICATION",
            "Authentication credentials not found: send 'Authorization: Bearer <API key>'",
        )
    return hash_api_key(token.strip())


async def account_for_header(deps: Dependencies, header: str) -> int:
    """The caller's account from its `Authorization: Bearer <API key>` header, or ApiError 401."""
    key_hash = bearer_key_hash(header)
    found = deps.caches.account_for_key(key_hash)
    if found is None:
        found = await store.account_for_key_hash(deps.pool, key_hash)
        if found is not None:
            deps.caches.remember_key(key_hash, found)
    if found is None:
        raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid or revoked")
    return found


async def api_key_hash(request: Request) -> bytes:
    return bearer_key_hash(request.headers.get("authorization", ""))


Account = Annotated[int, Depends(account_id)]
# The hash of the caller's API key (Account checks the key), for what records who created something.
ApiKeyHash = Annotated[bytes, Depends(api_key_hash)]
