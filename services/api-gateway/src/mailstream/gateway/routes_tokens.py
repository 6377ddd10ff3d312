"""The SMTP tokens API (HubSpot paths and JSON) and each token's statistics.

POST   /marketing/v3/transactional/smtp-tokens                          201, with password
GET    /marketing/v3/transactional/smtp-tokens?campaignName&emailCampaignId&after&limit
GET    /marketing/v3/transactional/smtp-tokens/{tokenId}                 no password
DELETE /marketing/v3/transactional/smtp-tokens/{tokenId}                 204
POST   /marketing/v3/transactional/smtp-tokens/{tokenId}/password-reset  200, new password
GET    /marketing/v3/transactional/smtp-tokens/{tokenId}/statistics      tracker counters + rates
"""

# no `from __future__ import annotations`: FastAPI must see the local Authed dependency type

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

import asyncpg
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mailstream.gateway import tokens
from mailstream.gateway.adapters import stats, tokens_store
from mailstream.gateway.adapters.tokens_store import Caller
from mailstream.gateway.errors import ApiError, not_found, unavailable

BASE = "/marketing/v3/transactional/smtp-tokens"


class SmtpTokenCreate(BaseModel):
    """SmtpApiTokenRequestEgg: both fields required."""

    model_config = ConfigDict(extra="forbid")

    createContact: bool
    campaignName: str = Field(min_length=1, max_length=255)


def tokens_router(pool: asyncpg.Pool) -> APIRouter:
    router = APIRouter(tags=["SMTP tokens"])

    async def caller(request: Request) -> Caller:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found: send 'Authorization: Bearer <API key>'",
            )
        try:
            found = await tokens_store.caller_for_key(pool, key.strip())
        except (OSError, asyncpg.PostgresError) as exc:
            raise unavailable("The database is unavailable; nothing was done, retry later") from exc
        if found is None:
            raise ApiError(401, "INVALID_AUTHENTICATION", "The API key provided is invalid or revoked")
        return found

    Authed = Annotated[Caller, Depends(caller)]

    async def owned(account_id: int, token_id: str) -> tokens.TokenRow:
        token = await tokens_store.get_token(pool, account_id, token_id)
        if token is None:
            raise not_found(f"SMTP token {token_id}")
        return token

    @router.post(BASE, status_code=201)
    async def create_token(body: SmtpTokenCreate, who: Authed) -> dict[str, Any]:
        password = tokens.new_password()
        password_hash = await asyncio.to_thread(tokens.hash_password, password)
        token = await tokens_store.create_token(
            pool,
            token_id=tokens.new_token_id(),
            account_id=who.account_id,
            password_hash=password_hash,
            campaign_name=body.campaignName,
            create_contact=body.createContact,
            created_by=who.created_by,
        )
        return tokens.token_view(token, password=password)

    @router.get(BASE)
    async def list_tokens(
        request: Request,
        who: Authed,
        campaignName: str | None = None,
        emailCampaignId: str | None = None,
        after: str | None = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        try:
            cursor = tokens.parse_cursor(after)
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
            pool,
            who.account_id,
            after=cursor,
            limit=limit,
            campaign_name=campaignName,
            email_campaign_id=campaign_id,
        )

        def link(next_after: str) -> str:
            params = {k: v for k, v in request.query_params.items() if k != "after"}
            return f"{request.url.path}?{urlencode({**params, 'after': next_after})}"

        return tokens.page_view(rows, limit, link)

    @router.get(BASE + "/{token_id}")
    async def get_token(token_id: str, who: Authed) -> dict[str, Any]:
        return tokens.token_view(await owned(who.account_id, token_id))

    @router.delete(BASE + "/{token_id}", status_code=204)
    async def delete_token(token_id: str, who: Authed) -> Response:
        if not await tokens_store.delete_token(pool, who.account_id, token_id):
            raise not_found(f"SMTP token {token_id}")
        return Response(status_code=204)

    @router.post(BASE + "/{token_id}/password-reset")
    async def reset_password(token_id: str, who: Authed) -> dict[str, Any]:
        await owned(who.account_id, token_id)
        password = tokens.new_password()
        password_hash = await asyncio.to_thread(tokens.hash_password, password)
        token = await tokens_store.reset_password(pool, who.account_id, token_id, password_hash)
        if token is None:  # deleted meanwhile
            raise not_found(f"SMTP token {token_id}")
        return tokens.token_view(token, password=password)

    @router.get(BASE + "/{token_id}/statistics")
    async def token_statistics(token_id: str, who: Authed) -> dict[str, Any]:
        token = await owned(who.account_id, token_id)
        return tokens.statistics_view(token, await stats.stats_row(pool, who.account_id, "token", token_id))

    return router
