"""Sending domains of the caller's account: add one (its DKIM key is made here), publish the
records shown, verify, and see each record's status.

POST   /mailstream/v1/sending-domains                   201, the records to publish
GET    /mailstream/v1/sending-domains?after&limit
GET    /mailstream/v1/sending-domains/{domain}          each record's last status and reason
POST   /mailstream/v1/sending-domains/{domain}/verify   DNS lookups now, the result
DELETE /mailstream/v1/sending-domains/{domain}          204
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.domain_models import SendingDomainCreate, SendingDomainPage, SendingDomainView, domain_view

BASE = "/mailstream/v1/sending-domains"
router = APIRouter(tags=["Sending domains"])


@router.post(BASE, status_code=201)
async def add_domain(body: SendingDomainCreate, account: Account, deps: Deps) -> SendingDomainView:
    return domain_view(await deps.domains.add(account, body.domain))


@router.get(BASE)
async def list_domains(
    request: Request,
    account: Account,
    deps: Deps,
    after: Annotated[str | None, Query(max_length=253)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> SendingDomainPage:
    """The account's domains by name, `limit` per page; `paging.next.after` is the next page's cursor."""
    found = await deps.domains.list_domains(account, after=(after or "").lower(), limit=limit + 1)
    page = SendingDomainPage(results=[domain_view(d) for d in found[:limit]])
    if len(found) > limit:
        cursor = found[limit - 1].row.domain
        page.paging = {"next": {"after": cursor, "link": str(request.url.include_query_params(after=cursor))}}
    return page


@router.get(BASE + "/{domain}")
async def get_domain(domain: str, account: Account, deps: Deps) -> SendingDomainView:
    return domain_view(await deps.domains.show(account, domain))


@router.post(BASE + "/{domain}/verify")
async def verify_domain(domain: str, account: Account, deps: Deps) -> SendingDomainView:
    return domain_view(await deps.domains.verify(account, domain))


@router.delete(BASE + "/{domain}", status_code=204)
async def delete_domain(domain: str, account: Account, deps: Deps) -> Response:
    await deps.domains.delete(account, domain)
    return Response(status_code=204)
