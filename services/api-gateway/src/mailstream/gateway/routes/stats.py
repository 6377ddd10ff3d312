"""GET /mailstream/v1/stats: the tracker's statistics for the account, an email or an SMTP token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from mailstream.gateway.adapters import emails, stats
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import invalid, not_found
from mailstream.gateway.models import StatsView
from mailstream.gateway.views import stats_view

router = APIRouter(tags=["stats"])


@router.get("/mailstream/v1/stats", response_model=StatsView)
async def get_stats(
    account: Account,
    deps: Deps,
    emailId: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    tokenId: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    """Counts and rates (open rate = unique human opens / delivered; click rate likewise; 0 when
    nothing was delivered). Without a filter: the whole account."""
    if emailId is not None and tokenId is not None:
        raise invalid("tokenId", "give emailId or tokenId, not both")
    if emailId is not None:
        if await emails.get_email(deps.pool, account, emailId) is None:
            raise not_found(f"Email {emailId}")
        scope, dimension_id = "email", str(emailId)
    elif tokenId is not None:
        if not await stats.token_exists(deps.pool, account, tokenId):
            raise not_found(f"SMTP token {tokenId}")
        scope, dimension_id = "token", tokenId
    else:
        scope, dimension_id = "account", str(account)
    return stats_view(scope, dimension_id, await stats.stats_row(deps.pool, account, scope, dimension_id))
