"""GET /mailstream/v1/stats: the tracker's statistics for the account, an email, an SMTP token or an
automation trigger rule (issue 16)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from mailstream.gateway.adapters import emails, stats
from mailstream.gateway.adapters import triggers_store as triggers
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
    triggerId: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> dict[str, Any]:
    """Counts and rates (open rate = unique human opens / delivered; click rate likewise; 0 when
    nothing was delivered). Without a filter: the whole account; one filter at most."""
    filters = (("emailId", emailId), ("tokenId", tokenId), ("triggerId", triggerId))
    given = [name for name, value in filters if value is not None]
    if len(given) > 1:
        raise invalid(given[-1], "give one of emailId, tokenId and triggerId, not several")
    if triggerId is not None:
        return await trigger_stats(deps, account, triggerId)
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


async def trigger_stats(deps, account: int, trigger_id: str) -> dict[str, Any]:
    """The statistics of the sends an automation trigger rule of the account made (404: no such rule)."""
    try:
        trigger_id = str(uuid.UUID(trigger_id))
    except ValueError:
        raise not_found(f"Trigger {trigger_id}") from None
    if await triggers.get(deps.pool, account, trigger_id) is None:
        raise not_found(f"Trigger {trigger_id}")
    return stats_view("trigger", trigger_id, await stats.stats_row(deps.pool, account, "trigger", trigger_id))
