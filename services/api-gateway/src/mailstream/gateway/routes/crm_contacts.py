"""Contacts as HubSpot's CRM v3 objects: a page of them, one, and deleting one. A contact's id is
its email address (HubSpot's idProperty=email); deleting removes the contact record, while the
address's suppressions (bounce, spam report, unsubscribe: the tracker's) stay.

GET    /crm/v3/objects/contacts?limit&after&archived   {"results": [...], "paging": {"next": {"after", "link"}}}
GET    /crm/v3/objects/contacts/{contactId}
DELETE /crm/v3/objects/contacts/{contactId}            204
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from mailstream.gateway.adapters import contacts
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import not_found
from mailstream.gateway.views import iso

BASE = "/crm/v3/objects/contacts"
router = APIRouter(tags=["contacts"])


def crm_contact_view(row: dict[str, Any]) -> dict[str, Any]:
    properties = {
        **row["properties"],
        "email": row["email"],
        "createdate": iso(row["created_at"]),
        "lastmodifieddate": iso(row["updated_at"]),
    }
    return {
        "id": row["email"],
        "properties": properties,
        "createdAt": iso(row["created_at"]),
        "updatedAt": iso(row["updated_at"]),
        "archived": False,
    }


@router.get(BASE)
async def list_contacts(
    request: Request,
    account: Account,
    deps: Deps,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    after: Annotated[str | None, Query(max_length=320)] = None,
    archived: bool = False,
) -> dict[str, Any]:
    """The account's contacts in address order, `limit` a page; `paging.next.after` continues.
    Deleted contacts are not kept, so `archived=true` lists none."""
    if archived:
        return {"results": []}
    rows = await contacts.list_contacts(deps.pool, account, after=after or "", limit=limit)
    page: dict[str, Any] = {"results": [crm_contact_view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        next_after = rows[limit - 1]["email"]
        params = {k: v for k, v in request.query_params.items() if k != "after"}
        link = f"{request.url.path}?{urlencode({**params, 'after': next_after})}"
        page["paging"] = {"next": {"after": next_after, "link": link}}
    return page


@router.get(BASE + "/{contact_id}")
async def get_contact(contact_id: str, account: Account, deps: Deps) -> dict[str, Any]:
    row = await contacts.get_contact(deps.pool, account, contact_id)
    if row is None:
        raise not_found(f"Contact {contact_id}")
    return crm_contact_view(row)


@router.delete(BASE + "/{contact_id}", status_code=204, response_class=Response)
async def delete_contact(contact_id: str, account: Account, deps: Deps) -> Response:
    if not await contacts.delete_contact(deps.pool, account, contact_id):
        raise not_found(f"Contact {contact_id}")
    return Response(status_code=204)
