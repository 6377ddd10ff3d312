"""Contacts: upsert by email with properties and statuses; read with the tracker's suppressions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mailstream.gateway import rules
from mailstream.gateway.adapters import contacts
from mailstream.gateway.deps import Account, Deps
from mailstream.gateway.errors import invalid, not_found
from mailstream.gateway.models import ContactUpsert, ContactView
from mailstream.gateway.views import contact_view

router = APIRouter(prefix="/mailstream/v1/contacts", tags=["contacts"])


@router.put("/{email}", response_model=ContactView)
async def upsert_contact(email: str, body: ContactUpsert, account: Account, deps: Deps) -> dict[str, Any]:
    """Create or update the contact: properties are merged, the statuses given are set."""
    if not rules.valid_address(email):
        raise invalid("email", f"{email!r} is not a valid email address")
    statuses = {
        "subscription_status": body.subscriptionStatus,
        "quarantined": body.quarantined,
        "double_opt_in": body.doubleOptIn,
        "bounced": body.bounced,
        "spam_reported": body.spamReported,
    }
    row = await contacts.upsert_contact(deps.pool, account, email, properties=body.properties, statuses=statuses)
    return contact_view(row, await contacts.suppressions_of(deps.pool, account, email))


@router.get("/{email}", response_model=ContactView)
async def get_contact(email: str, account: Account, deps: Deps) -> dict[str, Any]:
    row = await contacts.get_contact(deps.pool, account, email)
    if row is None:
        raise not_found(f"Contact {email}")
    return contact_view(row, await contacts.suppressions_of(deps.pool, account, email))
