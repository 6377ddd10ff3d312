"""The SMTP tokens API (HubSpot paths and JSON) and each token's statistics.

POST   /marketing/v3/transactional/smtp-tokens                          201, with password
GET    /marketing/v3/transactional/smtp-tokens?campaignName&emailCampaignId&after&limit
GET    /marketing/v3/transactional/smtp-tokens/{tokenId}                 no password
DELETE /marketing/v3/transactional/smtp-tokens/{tokenId}                 204
POST   /marketing/v3/transactional/smtp-tokens/{tokenId}/password-reset  200, new password
GET    /marketing/v3/transactional/smtp-tokens/{tokenId}/statistics      tracker counters + rates

Each is also served under HubSpot's dated path, /marketing/transactional/2026-03/smtp-tokens...
(the same schemas), as the single send is.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Query, Request, Response

from mailstream.gateway import passwords
from mailstream.gateway.adapters import stats, tokens_store
from mailstream.gateway.adapters.tokens_store import TokenRow
from mailstream.gateway.deps import Account, ApiKeyHash, Deps
from mailstream.gateway.errors import ApiError, not_found
from mailstream.gateway.models import SmtpTokenCreate
from mailstream.gateway.views import parse_token_cursor, token_page_view, token_statistics_view, token_view

BASE = "/marketing/v3/transactional/smtp-tokens"
DATED = "/marketing/transactional/2026-03/smtp-tokens"
router = APIRouter(tags=["SMTP tokens"])


async def _owned(pool: asyncpg.Pool, account: int, token_id: str) -> TokenRow:
    token = await tokens_store.get_token(pool, account, token_id)
    if token is None:
        raise not_found(f"SMTP token {token_id}")
    return token


async def _new_password() -> tuple[str, str]:
    """(password, its hash): argon2 in a thread, off the event loop."""
    password = passwords.new_password()
    return password, await asyncio.to_thread(passwords.hash_password, password)


@router.post(BASE, status_code=201)
@router.post(DATED, status_code=201, include_in_schema=False)
async def create_token(body: SmtpTokenCreate, account: Account, deps: Deps, key_hash: ApiKeyHash) -> dict[str, Any]:
    created_by = await tokens_store.creator_of_key(deps.pool, account, key_hash)
    if created_by is None:  # the account was removed since its key was checked
        raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid or revoked")
    password, password_hash = await _new_password()
    token = await tokens_store.create_token(
        deps.pool,
        token_id=passwords.new_token_id(),
        account_id=account,
        password_hash=password_hash,
        campaign_name=body.campaignName,
        create_contact=body.createContact,
        created_by=created_by,
    )
    return token_view(token, password=password)


@router.get(BASE)
@router.get(DATED, include_in_schema=False)
async def list_tokens(
    request: Request,
    account: Account,
    deps: Deps,
    campaignName: str | None = None,
    emailCampaignId: str | None = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    try:
        cursor = parse_token_cursor(after)
    except ValueError:
        raise ApiError(
            400, "VALIDATION_ERROR", f"Invalid 'after' cursor {after!r}: use paging.next.after of the last page"
        ) from None
    campaign_id: int | None = None
    if emailCampaignId is not None:
        if not emailCampaignId.isdigit():
            return {"results": []}  # no token has a non-numeric campaign id
        campaign_id = int(emailCampaignId)
    rows = await tokens_store.list_tokens(
        deps.pool,
        account,
        after=cursor,
        limit=limit,
        campaign_name=campaignName,
        email_campaign_id=campaign_id,
    )

    def link(next_after: str) -> str:
        params = {k: v for k, v in request.query_params.items() if k != "after"}
        return f"{request.url.path}?{urlencode({**params, 'after': next_after})}"

    return token_page_view(rows, limit, link)


@router.get(BASE + "/{token_id}")
@router.get(DATED + "/{token_id}", include_in_schema=False)
async def get_token(token_id: str, account: Account, deps: Deps) -> dict[str, Any]:
    return token_view(await _owned(deps.pool, account, token_id))


@router.delete(BASE + "/{token_id}", status_code=204)
@router.delete(DATED + "/{token_id}", status_code=204, include_in_schema=False)
async def delete_token(token_id: str, account: Account, deps: Deps) -> Response:
    if not await tokens_store.delete_token(deps.pool, account, token_id):
        raise not_found(f"SMTP token {token_id}")
    return Response(status_code=204)


@router.post(BASE + "/{token_id}/password-reset")
@router.post(DATED + "/{token_id}/password-reset", include_in_schema=False)
async def reset_password(token_id: str, account: Account, deps: Deps) -> dict[str, Any]:
    await _owned(deps.pool, account, token_id)
    password, password_hash = await _new_password()
    # the old password stops working at once: AUTH and open sessions compare the stored hash
    token = await tokens_store.reset_password(deps.pool, account, token_id, password_hash)
    if token is None:  # deleted meanwhile
        raise not_found(f"SMTP token {token_id}")
    return token_view(token, password=password)


@router.get(BASE + "/{token_id}/statistics")
@router.get(DATED + "/{token_id}/statistics", include_in_schema=False)
async def token_statistics(token_id: str, account: Account, deps: Deps) -> dict[str, Any]:
    token = await _owned(deps.pool, account, token_id)
    return token_statistics_view(token, await stats.stats_row(deps.pool, account, "token", token_id))
