"""Users of an account and its API keys (a key is shown once, when it is created)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from mailstream.gateway import rules
from mailstream.gateway.adapters import store
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import conflict, invalid, not_found
from mailstream.gateway.keys import new_api_key
from mailstream.gateway.limits import RateSpec
from mailstream.gateway.models import ApiKeyCreate, ApiKeyView, ObjectId, UserCreate, UserView
from mailstream.gateway.scopes import ALL_SCOPES, parse_scopes
from mailstream.gateway.views import api_key_view, user_view

router = APIRouter(prefix="/mailstream/v1", tags=["account"])


@router.post("/users", status_code=201, response_model=UserView)
async def create_user(body: UserCreate, account: Account, deps: Deps) -> dict[str, Any]:
    if not rules.valid_address(body.email):
        raise invalid("email", f"{body.email!r} is not a valid email address")
    row = await store.create_user(deps.pool, account, body.email, body.name)
    if row is None:
        raise conflict(f"A user with email {body.email} already exists in this account")
    return user_view(row)


@router.get("/users", response_model=list[UserView])
async def list_users(account: Account, deps: Deps) -> list[dict[str, Any]]:
    return [user_view(r) for r in await store.list_users(deps.pool, account)]


@router.delete("/users/{user_id}", status_code=204, response_class=Response)
async def remove_user(user_id: ObjectId, account: Account, deps: Deps) -> Response:
    """Removes the user; keys and tokens it created keep working."""
    if not await store.remove_user(deps.pool, account, user_id):
        raise not_found(f"User {user_id}")
    return Response(status_code=204)


@router.post("/api-keys", status_code=201, response_model=ApiKeyView, response_model_exclude_none=True)
async def create_api_key(body: ApiKeyCreate, account: Account, deps: Deps) -> dict[str, Any]:
    """A new random key, returned in `key` this once; only its SHA-256 is stored. It grants the
    `scopes` given (all when omitted) within its own `rateLimit` (the gateway's when omitted)."""
    try:
        scopes = ALL_SCOPES if body.scopes is None else parse_scopes(body.scopes)
    except ValueError as exc:
        raise invalid("scopes", str(exc)) from None
    try:
        rate_limit = RateSpec.parse(body.rateLimit) if body.rateLimit is not None else None
    except ValueError as exc:
        raise invalid("rateLimit", str(exc)) from None
    if body.userId is not None and not await store.user_exists(deps.pool, account, body.userId):
        raise not_found(f"User {body.userId}")
    key = new_api_key()
    row = await store.insert_api_key(
        deps.pool, account, key, name=body.name, created_by=body.userId, scopes=scopes, rate_limit=rate_limit
    )
    return api_key_view(row, key)


@router.get("/api-keys", response_model=list[ApiKeyView], response_model_exclude_none=True)
async def list_api_keys(account: Account, deps: Deps) -> list[dict[str, Any]]:
    return [api_key_view(r) for r in await store.list_api_keys(deps.pool, account)]


@router.delete("/api-keys/{key_id}", status_code=204, response_class=Response)
async def revoke_api_key(key_id: ObjectId, account: Account, deps: Deps) -> Response:
    """Revokes the key at once: requests with it answer 401."""
    if not await store.revoke_api_key(deps.pool, account, key_id):
        raise not_found(f"API key {key_id}")
    await deps.keys_changed()  # this replica stops accepting it at once, the others on notice
    return Response(status_code=204)
