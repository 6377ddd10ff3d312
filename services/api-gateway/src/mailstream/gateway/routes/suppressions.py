"""One address's suppressions: show them with their history, add one, remove one (or unbounce).

GET  /mailstream/v1/suppressions/{email}            current suppressions and the history of changes (404: neither)
POST /mailstream/v1/suppressions                    {"email", "reason"?, "note"?} -> 202 (reason: MANUAL)
POST /mailstream/v1/suppressions/{email}/remove     {"reason", "note"} -> 202
POST /mailstream/v1/suppressions/{email}/unbounce   {"reason": "..."} -> 202

The suppressions are the tracker's: the gateway publishes a SuppressionChanged (ADD, or REMOVE
and the reason lifted, e.g. BOUNCED) and answers once Kafka acknowledged it; the tracker applies
it and keeps the change, with the note and who asked, in the address's history (moments later).
On a removal the contact's own status that says the same (`bounced`, `spamReported`, an
UNSUBSCRIBED `subscriptionStatus`), if set, is lifted at once. The list, export and bulk routes
are in routes/suppression_lists.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mailstream.gateway import suppression_list
from mailstream.gateway.adapters import contacts
from mailstream.gateway.deps import Caller, Dependencies, Deps
from mailstream.gateway.errors import ApiError, invalid, not_found
from mailstream.gateway.suppression_list import MAX_NOTE, NAMES, REASONS, InvalidInput
from mailstream.gateway.views import iso
from mailstream.schemas import SuppressionAction, SuppressionChanged, encode
from mailstream.schemas.topics import SUPPRESSION_CHANGES

__all__ = ["NAMES", "REASONS", "request_addition", "request_removal", "router"]

BASE = "/mailstream/v1/suppressions"
router = APIRouter(tags=["contacts"])


class UnbounceRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_NOTE, description="why the bounce is lifted; kept in the history")


class SuppressionAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    reason: str | None = Field(None, description="BOUNCED, SPAM_REPORT, UNSUBSCRIBED or MANUAL (the default)")
    note: str | None = Field(
        None, max_length=MAX_NOTE, description="kept as the suppression's detail and in the history"
    )


class SuppressionRemove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(description="the suppression lifted: BOUNCED, SPAM_REPORT, UNSUBSCRIBED or MANUAL")
    note: str = Field(max_length=MAX_NOTE, description="why (required); kept in the history")


def bad_input(exc: InvalidInput) -> ApiError:
    return invalid(exc.field, exc.message)


def _address(email: str) -> str:
    try:
        return suppression_list.address(email)
    except InvalidInput as exc:
        raise bad_input(exc) from None


def history_view(row: dict[str, Any]) -> dict[str, Any]:
    """A change requested through email.suppression.changes (the API, the console): that request caused it."""
    return {
        "eventId": row["event_id"],
        "action": row["action"],
        "suppression": row["reason"],
        "changed": list(row["changed"]),
        "reason": row["note"],
        "requestedBy": row["requested_by"],
        "requestedAt": iso(row["requested_at"]),
        "appliedAt": iso(row["applied_at"]),
        "causedBy": {"type": "SUPPRESSION_CHANGE", "eventId": row["event_id"], "messageId": None},
    }


def caused_by(row: dict[str, Any]) -> dict[str, Any] | None:
    """The email event (BOUNCE, SPAMREPORT, STATUSCHANGE) and message behind a current suppression, when known."""
    if row["event_id"] is None and row["message_id"] is None:
        return None
    return {
        "type": row["event_type"],
        "eventId": str(row["event_id"]) if row["event_id"] is not None else None,
        "messageId": str(row["message_id"]) if row["message_id"] is not None else None,
    }


def recorded_view(row: dict[str, Any]) -> dict[str, Any]:
    """A current suppression the tracker made from an event (no request in the history): as an ADD."""
    return {
        "eventId": (caused_by(row) or {}).get("eventId"),
        "action": "ADD",
        "suppression": row["reason"],
        "changed": [row["reason"]],
        "reason": row["detail"],
        "requestedBy": "tracker",
        "requestedAt": iso(row["created_at"]),
        "appliedAt": iso(row["created_at"]),
        "causedBy": caused_by(row),
    }


def suppressions_view(address: str, current: list[dict[str, Any]], history: list[dict[str, Any]]) -> dict[str, Any]:
    """GET {email}: the reasons (as before), each current one with its cause, and every change in
    time order: the requested ones, and an ADD for each current suppression an event made."""
    requested = {r["reason"] for r in history if r["action"] == "ADD" and r["reason"] in r["changed"]}
    entries = [history_view(r) for r in history]
    entries += [recorded_view(r) for r in current if r["reason"] not in requested]
    entries.sort(key=lambda e: e["requestedAt"] or "")
    return {
        "email": address,
        "suppressions": [r["reason"] for r in current],
        "current": [{**suppression_list.item_view(r), "causedBy": caused_by(r)} for r in current],
        "history": entries,
    }


@router.get(BASE + "/{email}")
async def get_suppressions(email: str, account: Caller, deps: Deps) -> dict[str, Any]:
    """The address's suppressions, with what caused each, and its history (removals with their note and who asked)."""
    address = _address(email)
    current = await contacts.suppression_details(deps.pool, account.account_id, address)
    history = await contacts.suppression_history(deps.pool, account.account_id, address)
    if not current and not history:
        raise not_found(f"Suppressions of {address}")
    return suppressions_view(address, current, history)


@router.post(BASE, status_code=202)
async def add_suppression(body: SuppressionAdd, caller: Caller, deps: Deps) -> JSONResponse:
    """Suppress the address (MANUAL by default: no email of either kind goes to it) once the tracker applied it."""
    try:
        address = suppression_list.address(body.email)
        reason = suppression_list.reason_of(body.reason, default=suppression_list.DEFAULT_ADD_REASON)
        note = suppression_list.note_of(body.note, required=False)
    except InvalidInput as exc:
        raise bad_input(exc) from None
    view = await request_addition(deps, caller.account_id, address, reason, note, f"api-key:{caller.key_id}")
    return JSONResponse(view, status_code=202)


@router.post(BASE + "/{email}/remove", status_code=202)
async def remove_suppression(email: str, body: SuppressionRemove, caller: Caller, deps: Deps) -> JSONResponse:
    """Lift one of the address's suppressions (404 when it has none of that reason)."""
    reason = body.reason.upper()
    view = await request_removal(deps, caller.account_id, email, reason, body.note, f"api-key:{caller.key_id}")
    return JSONResponse(view, status_code=202)


@router.post(BASE + "/{email}/unbounce", status_code=202)
async def unbounce(email: str, body: UnbounceRequest, caller: Caller, deps: Deps) -> JSONResponse:
    """Lift the address's bounce suppression: mail to it is sent again once the tracker applied it."""
    view = await request_removal(deps, caller.account_id, email, "BOUNCED", body.reason, f"api-key:{caller.key_id}")
    return JSONResponse(view, status_code=202)


def suppression_change(
    account_id: int, address: str, action: SuppressionAction, reason: str | None, note: str | None, requested_by: str
) -> SuppressionChanged:
    return SuppressionChanged(
        event_id=str(uuid.uuid4()),
        account_id=account_id,
        address=address,
        action=action,
        occurred_at=datetime.now(UTC),
        reason=reason,
        note=note,
        requested_by=requested_by,
    )


def change_record(change: SuppressionChanged) -> tuple[bytes, bytes]:
    """(key, value) on email.suppression.changes: one address's changes stay in order."""
    return f"{change.account_id}:{change.address}".encode(), encode(change)


def change_view(change: SuppressionChanged) -> dict[str, Any]:
    return {
        "eventId": change.event_id,
        "email": change.address,
        "action": change.action.value,
        "suppression": change.reason,
        "reason": change.note,
        "requestedBy": change.requested_by,
        "requestedAt": iso(change.occurred_at),
    }


async def request_addition(
    deps: Dependencies, account_id: int, address: str, reason: str, note: str | None, requested_by: str
) -> dict[str, Any]:
    """Publish the ADD of one suppression (address and reason already checked)."""
    change = suppression_change(account_id, address, SuppressionAction.ADD, reason, note, requested_by)
    key, value = change_record(change)
    await deps.kafka.send(SUPPRESSION_CHANGES.name, value, key=key)
    return change_view(change)


async def request_removal(
    deps: Dependencies, account_id: int, email: str, suppression: str, note: str, requested_by: str
) -> dict[str, Any]:
    """Publish the REMOVE of one of the address's suppressions (400 for an unknown reason or no note,
    404 when the address has no suppression of that reason); the API's remove and unbounce and the
    console's remove all call this."""
    if suppression not in REASONS:
        raise invalid("suppression", f"{suppression!r} is not one of {', '.join(REASONS)}")
    try:
        note = suppression_list.note_of(note, required=True, field="reason")
    except InvalidInput as exc:
        raise bad_input(exc) from None
    address = _address(email)
    contact = await contacts.get_contact(deps.pool, account_id, address)
    suppressed = suppression in await contacts.suppressions_of(deps.pool, account_id, address)
    if not suppressed and not contacts.status_says(contact, suppression):
        raise not_found(f"{NAMES[suppression]} suppression of {address}")
    change = suppression_change(account_id, address, SuppressionAction.REMOVE, suppression, note, requested_by)
    key, value = change_record(change)
    async with deps.pool.acquire() as conn, conn.transaction():
        await contacts.clear_status(conn, account_id, address, suppression)
        # acknowledged before the transaction commits: a refused publish changes nothing
        await deps.kafka.send(SUPPRESSION_CHANGES.name, value, key=key)
    return change_view(change)
