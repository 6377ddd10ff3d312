"""The caller's dedicated IPs: the transactional pool of pools.toml its mail leaves from, and
whether it is ready (one of the account's sending domains is verified). Any API key of the
account may assign (scopes are another issue).

GET    /mailstream/v1/ips
PUT    /mailstream/v1/ips   {"pool": "pair"}
DELETE /mailstream/v1/ips   204: back to the shared pool
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.domain_models import DedicatedIpsView, IpPoolAssign, ips_view

BASE = "/mailstream/v1/ips"
router = APIRouter(tags=["Dedicated IPs"])


@router.get(BASE)
async def get_ips(account: Account, deps: Deps) -> DedicatedIpsView:
    return ips_view(await deps.domains.ip_status(account))


@router.put(BASE)
async def assign_ips(body: IpPoolAssign, account: Account, deps: Deps) -> DedicatedIpsView:
    return ips_view(await deps.domains.assign(account, body.pool))


@router.delete(BASE, status_code=204)
async def unassign_ips(account: Account, deps: Deps) -> Response:
    await deps.domains.unassign(account)
    return Response(status_code=204)
