"""An address's suppressions and lifting one (unbounce, or the console's remove), with the reason recorded.

GET  /mailstream/v1/suppressions/{email}            current suppressions and the history of changes (404: neither)
POST /mailstream/v1/suppressions/{email}/unbounce   {"reason": "..."} -> 202

The suppressions are the tracker's: the gateway publishes a SuppressionChanged (REMOVE and the
reason lifted, e.g. BOUNCED) and answers once Kafka acknowledged it; the tracker deletes that one
reason and keeps the change, with the note and who asked, in the address's history (moments
later). The contact's own status that says the same (`bounced`, `spamReported`, an UNSUBSCRIBED
`subscriptionStatus`), if set, is lifted at once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mailstream.gateway import rules
from mailstream.gateway.adapters import contacts
from mailstream.gateway.deps import Caller, Dependencies, Deps
from mailstream.gateway.errors import invalid, not_found
from mailstream.gateway.views import iso
from mailstream.schemas import SuppressionAction, SuppressionChanged, encode
from mailstream.schemas.topics import SUPPRESSION_CHANGES

BASE = "/mailstream/v1/suppressions"
# the tracker's suppression reasons (the CHECK on its suppressions table), as people read them
NAMES = {"BOUNCED": "Bounce", "SPAM_REPORT": "Spam report", "UNSUBSCRIBED": "Unsubscribe"}
REASONS = tuple(NAMES)
MAX_NOTE = 1000
router = APIRouter(tags=["contacts"])


class UnbounceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_NOTE, description="why the bounce is lifted; kept in the history")


def _address(email: str) -> str:
    if not rules.valid_address(email):
        raise invalid("email", f"{email!r} is not a valid email address")
    return email.lower()


def history_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "eventId": row["event_id"],
        "action": row["action"],
        "suppression": row["reason"],
        "changed": list(row["changed"]),
        "reason": row["note"],
        "requestedBy": row["requested_by"],
        "requestedAt": iso(row["requested_at"]),
        "appliedAt": iso(row["applied_at"]),
    }


@router.get(BASE + "/{email}")
async def get_suppressions(email: str, account: Caller, deps: Deps) -> dict[str, Any]:
    address = _address(email)
    current = await contacts.suppressions_of(deps.pool, account.account_id, address)
    history = await contacts.suppression_history(deps.pool, account.account_id, address)
    if not current and not history:
        raise not_found(f"Suppressions of {address}")
    return {"email": address, "suppressions": current, "history": [history_view(r) for r in history]}


@router.post(BASE + "/{email}/unbounce", status_code=202)
async def unbounce(email: str, body: UnbounceRequest, caller: Caller, deps: Deps) -> JSONResponse:
    """Lift the address's bounce suppression: mail to it is sent again once the tracker applied it."""
    view = await request_removal(deps, caller.account_id, email, "BOUNCED", body.reason, f"api-key:{caller.key_id}")
    return JSONResponse(view, status_code=202)


async def request_removal(
    deps: Dependencies, account_id: int, email: str, suppression: str, note: str, requested_by: str
) -> dict[str, Any]:
    """Publish the REMOVE of one of the address's suppressions (400 for an unknown reason or no note,
    404 when the address has no suppression of that reason); the API's unbounce and the console's
    remove both call this."""
    if suppression not in REASONS:
        raise invalid("suppression", f"{suppression!r} is not one of {', '.join(REASONS)}")
    note = note.strip()
    if not note or len(note) > MAX_NOTE:
        raise invalid("reason", f"give the reason for the removal ({MAX_NOTE} characters at most)")
    address = _address(email)
    contact = await contacts.get_contact(deps.pool, account_id, address)
    suppressed = suppression in await contacts.suppressions_of(deps.pool, account_id, address)
    if not suppressed and not contacts.status_says(contact, suppression):
        raise not_found(f"{NAMES[suppression]} suppression of {address}")
    change = SuppressionChanged(
        event_id=str(uuid.uuid4()),
        account_id=account_id,
        address=address,
        action=SuppressionAction.REMOVE,
        occurred_at=datetime.now(UTC),
        reason=suppression,
        note=note,
        requested_by=requested_by,
    )
    async with deps.pool.acquire() as conn, conn.transaction():
        await contacts.clear_status(conn, account_id, address, suppression)
        # acknowledged before the transaction commits: a refused publish changes nothing
        await deps.kafka.send(SUPPRESSION_CHANGES.name, encode(change), key=f"{account_id}:{address}".encode())
    return {
        "eventId": change.event_id,
        "email": address,
        "action": change.action.value,
        "suppression": change.reason,
        "reason": change.note,
        "requestedBy": change.requested_by,
        "requestedAt": iso(change.occurred_at),
    }
