"""What routes need: the pool, the Kafka link, the send acceptor, the caches, the domain settings,
and the caller's account from its API key, once the key is found to grant the operation's scope
(else 403 MISSING_SCOPES) within its request limit (else 429 RATE_LIMITS). The key's scopes and
limit are cached with it and its window is counted in memory: no database round trip is added."""

from __future__ import annotations

import functools
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
from mailstream.gateway.keys import KeyGrant, hash_api_key
from mailstream.gateway.limits import RateLimiter, RateSpec
from mailstream.gateway.scopes import HUBSPOT_SCOPES, scope_of
from mailstream.gateway.triggers.allowed import Allowed
from mailstream.gateway.webhooks.options import WebhookOptions

DEFAULT_RATE_LIMIT = RateSpec.parse("100000/10s")


@dataclass
class Dependencies:
    pool: asyncpg.Pool
    kafka: KafkaLink
    caches: Caches = field(default_factory=lambda: Caches(api_key_ttl_s=2.0))
    require_sending_domain: bool = False
    acceptor: Acceptor | None = None
    domains: DomainService | None = None
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(default=DEFAULT_RATE_LIMIT))
    triggers_allowed: Allowed = field(default_factory=Allowed)  # topics and registries trigger rules may use
    webhooks: WebhookOptions = field(default_factory=WebhookOptions)  # URL policy, test events (issue 19)

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


@functools.lru_cache(maxsize=1024)
def _route_scope(path: str) -> str:
    return scope_of(path)


async def caller(request: Request) -> KeyGrant:
    """What the caller's key grants, once it is found to allow this operation now."""
    route = request.scope.get("route")
    scope = _route_scope(getattr(route, "path", None) or request.url.path)
    grant = await grant_for_header(request.app.state.deps, request.headers.get("authorization", ""))
    request.state.rate_limit_headers = allow(request.app.state.deps, grant, scope)  # errors.RATE_LIMIT_STATE
    return grant


async def account_id(grant: Annotated[KeyGrant, Depends(caller)]) -> int:
    return grant.account_id


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


async def grant_for_header(deps: Dependencies, header: str) -> KeyGrant:
    """What the caller's `Authorization: Bearer <API key>` header grants, or ApiError 401."""
    key_hash = bearer_key_hash(header)
    found = deps.caches.key_grant(key_hash)
    if found is None:
        found = await store.grant_for_key_hash(deps.pool, key_hash)
        if found is not None:
            deps.caches.remember_key(key_hash, found)
    if found is None:
        raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid or revoked")
    return found


def allow(deps: Dependencies, grant: KeyGrant, scope: str) -> dict[str, str]:
    """The rate-limit headers of a request the key may make, or ApiError 403 / 429 in HubSpot's shape."""
    if scope not in grant.scopes:
        hubspot = [name for name, grants in HUBSPOT_SCOPES.items() if scope in grants]
        also = f" (HubSpot's {' or '.join(hubspot)})" if hubspot else ""
        raise ApiError(
            403,
            "MISSING_SCOPES",
            f"This API key has not been granted all required scopes to make this call: it needs {scope!r}{also}",
            [{"message": "One or more of the following scopes are required.", "context": {"missingScopes": [scope]}}],
            context={"missingScopes": [scope]},
        )
    verdict = deps.limiter.take(grant.key_id, grant.rate_limit)
    if not verdict.allowed:
        raise ApiError(
            429,
            "RATE_LIMITS",
            f"You have reached your {verdict.spec} request limit for this API key; retry after "
            f"{verdict.retry_after_s} s",
            headers=verdict.headers(),
        )
    return verdict.headers()


async def account_for_header(deps: Dependencies, header: str, scope: str) -> tuple[int, dict[str, str]]:
    """The caller's account if its key grants `scope` within its limit, with the rate-limit headers."""
    grant = await grant_for_header(deps, header)
    return grant.account_id, allow(deps, grant, scope)


async def api_key_hash(request: Request) -> bytes:
    return bearer_key_hash(request.headers.get("authorization", ""))


Account = Annotated[int, Depends(account_id)]
# The caller's key (its id names who asked, e.g. in the suppression history); checked as Account is.
Caller = Annotated[KeyGrant, Depends(caller)]
# The hash of the caller's API key (Account checks the key), for what records who created something.
ApiKeyHash = Annotated[bytes, Depends(api_key_hash)]
