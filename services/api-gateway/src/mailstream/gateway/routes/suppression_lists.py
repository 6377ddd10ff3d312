"""The account's suppression list: listed, exported, added to and removed from in bulk.

GET  /mailstream/v1/suppressions?reason&since&q&limit&after   {"results": [...], "paging"?: {"next": {"after", "link"}}}
GET  /mailstream/v1/suppressions/export.csv?reason&since&q    the same rows as CSV, streamed
POST /mailstream/v1/suppressions/batch/add      {"inputs": [{"email", "reason"?, "note"?}]} -> 202
POST /mailstream/v1/suppressions/batch/remove   {"inputs": [{"email", "reason"?}], "note"} -> 202
                                                {"all": true, "reason"?, "confirm": "<account id>", "note"} -> 202

A bulk add or remove is one Kafka batch of SuppressionChanged records, answered once every one is
acknowledged; the tracker applies them moments later. These routes are registered before
routes/suppressions.py's: `export.csv` and `batch` would otherwise be taken for an address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from mailstream.gateway import suppression_list
from mailstream.gateway.adapters import contacts
from mailstream.gateway.deps import Caller, Dependencies, Deps
from mailstream.gateway.routes.suppressions import BASE, bad_input, change_record, suppression_change
from mailstream.gateway.suppression_list import MAX_BATCH, MAX_NOTE, InvalidInput, ListFilter
from mailstream.schemas import SuppressionAction, SuppressionChanged
from mailstream.schemas.topics import SUPPRESSION_CHANGES

router = APIRouter(tags=["contacts"])
EXPORT_PAGE = 1000  # rows read per query while exporting or clearing


class BatchAddInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    reason: str | None = Field(None, description="BOUNCED, SPAM_REPORT, UNSUBSCRIBED or MANUAL (the default)")
    note: str | None = Field(None, max_length=MAX_NOTE)


class BatchAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[BatchAddInput] = Field(max_length=MAX_BATCH)


class BatchRemoveInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    reason: str | None = Field(None, description="the suppression lifted; absent: every one of the address")


class BatchRemove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: list[BatchRemoveInput] | None = Field(None, max_length=MAX_BATCH)
    all: bool = Field(False, description="clear the whole list (or every suppression of `reason`)")
    reason: str | None = Field(None, description="with all: only this reason")
    confirm: str | None = Field(None, description="with all: the account's id, as a confirmation")
    note: str = Field(max_length=MAX_NOTE, description="why (required); kept in each address's history")


def _filter(reason: str | None, since: datetime | None, q: str | None) -> ListFilter:
    try:
        return suppression_list.list_filter(reason=reason, since=since, q=q)
    except InvalidInput as exc:
        raise bad_input(exc) from None


Reason = Annotated[str | None, Query(max_length=32, description="BOUNCED, SPAM_REPORT, UNSUBSCRIBED or MANUAL")]
Since = Annotated[datetime | None, Query(description="created at or after (ISO 8601 with a time zone)")]
Search = Annotated[str | None, Query(max_length=320, description="part of the address, or @domain")]


@router.get(BASE)
async def list_suppressions(
    request: Request,
    caller: Caller,
    deps: Deps,
    reason: Reason = None,
    since: Since = None,
    q: Search = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[str | None, Query(max_length=1400)] = None,
) -> dict[str, Any]:
    """The account's suppressions by address, `limit` per page; `paging.next.after` is the next page's cursor."""
    where = _filter(reason, since, q)
    try:
        cursor = suppression_list.parse_cursor(after)
    except InvalidInput as exc:
        raise bad_input(exc) from None
    rows = await contacts.suppression_page(deps.pool, caller.account_id, where, after=cursor, limit=limit + 1)
    page: dict[str, Any] = {"results": [suppression_list.item_view(r) for r in rows[:limit]]}
    if len(rows) > limit:
        next_after = suppression_list.page_cursor(rows[limit - 1])
        link = str(request.url.include_query_params(after=next_after, limit=limit))
        page["paging"] = {"next": {"after": next_after, "link": link}}
    return page


async def _pages(
    deps: Dependencies, account_id: int, where: ListFilter, first: list[dict[str, Any]] | None = None
) -> AsyncIterator[list[dict[str, Any]]]:
    """Every matching row, a page at a time (keyset: no connection held between pages), from
    `first` when the first page was already read."""
    rows = first
    if rows is None:
        rows = await contacts.suppression_page(deps.pool, account_id, where, after=None, limit=EXPORT_PAGE)
    while True:
        yield rows
        if len(rows) < EXPORT_PAGE:
            return
        cursor = (rows[-1]["address"], rows[-1]["reason"])
        rows = await contacts.suppression_page(deps.pool, account_id, where, after=cursor, limit=EXPORT_PAGE)


CSV_RESPONSE = {
    200: {"description": "CSV, a header row first", "content": {"text/csv": {"schema": {"type": "string"}}}}
}


@router.get(BASE + "/export.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
async def export_suppressions(
    caller: Caller, deps: Deps, reason: Reason = None, since: Since = None, q: Search = None
) -> StreamingResponse:
    """The filtered list as CSV (address, reason, createdAt, messageId, detail), a header row first."""
    where = _filter(reason, since, q)
    # the first page is read before answering: a database outage is still a 503, not a cut CSV
    first = await contacts.suppression_page(deps.pool, caller.account_id, where, after=None, limit=EXPORT_PAGE)

    async def lines() -> AsyncIterator[str]:
        header = True
        async for rows in _pages(deps, caller.account_id, where, first):
            yield suppression_list.csv_lines(rows, header=header)
            header = False

    headers = {"Content-Disposition": 'attachment; filename="suppressions.csv"'}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


def _entries(inputs: list[BaseModel], default_reason: str | None) -> list[suppression_list.BatchEntry]:
    try:
        return suppression_list.batch_entries([i.model_dump() for i in inputs], default_reason=default_reason)
    except InvalidInput as exc:
        raise bad_input(exc) from None


def _accepted(action: SuppressionAction, changes: list[SuppressionChanged]) -> JSONResponse:
    body = {"action": action.value, "requested": len(changes), "eventIds": [c.event_id for c in changes]}
    return JSONResponse(body, status_code=202)


@router.post(BASE + "/batch/add", status_code=202)
async def add_suppressions(body: BatchAdd, caller: Caller, deps: Deps) -> JSONResponse:
    """Suppress up to 1000 addresses (MANUAL unless a reason is given), one Kafka batch."""
    entries = _entries(body.inputs, suppression_list.DEFAULT_ADD_REASON)
    by = f"api-key:{caller.key_id}"
    add = SuppressionAction.ADD
    changes = [suppression_change(caller.account_id, e.address, add, e.reason, e.note, by) for e in entries]
    await deps.kafka.send_many(SUPPRESSION_CHANGES.name, [change_record(c) for c in changes])
    return _accepted(add, changes)


async def _remove(
    deps: Dependencies, account_id: int, entries: list[suppression_list.BatchEntry], note: str, by: str
) -> list[SuppressionChanged]:
    """One Kafka batch of REMOVEs; the contacts' own statuses for them lifted in the same transaction."""
    remove = SuppressionAction.REMOVE
    changes = [suppression_change(account_id, e.address, remove, e.reason, note, by) for e in entries]
    async with deps.pool.acquire() as conn, conn.transaction():
        for reason in {e.reason for e in entries}:
            addresses = [e.address for e in entries if e.reason == reason]
            await contacts.clear_statuses(conn, account_id, addresses, reason)
        # acknowledged before the transaction commits: a refused publish changes nothing
        await deps.kafka.send_many(SUPPRESSION_CHANGES.name, [change_record(c) for c in changes])
    return changes


@router.post(BASE + "/batch/remove", status_code=202)
async def remove_suppressions(body: BatchRemove, caller: Caller, deps: Deps) -> JSONResponse:
    """Lift up to 1000 suppressions, or (all, with the confirmation) every one, or every one of a reason."""
    try:
        note = suppression_list.note_of(body.note, required=True)
        if body.all:
            if body.inputs:
                raise InvalidInput("inputs", "give either inputs or all, not both")
            suppression_list.check_clear_all(confirm=body.confirm, account_id=caller.account_id)
            where = ListFilter(reason=suppression_list.reason_of(body.reason))
        elif body.reason is not None or body.confirm is not None:
            raise InvalidInput("all", "reason and confirm go with all: true (each input names its reason)")
    except InvalidInput as exc:
        error = bad_input(exc)
        if exc.field == "confirm":  # the value to confirm with, for a client to show and send back
            error.context = {"confirm": [str(caller.account_id)]}
        raise error from None
    by = f"api-key:{caller.key_id}"
    if not body.all:
        changes = await _remove(deps, caller.account_id, _entries(body.inputs or [], None), note, by)
        return _accepted(SuppressionAction.REMOVE, changes)
    # a bulk clear: one batch per page of the list, each row its own REMOVE (its history keeps it);
    # the keyset cursor moves past the rows asked for, which the tracker may not have applied yet
    changes = []
    async for rows in _pages(deps, caller.account_id, where):
        if rows:
            entries = [suppression_list.BatchEntry(r["address"], r["reason"]) for r in rows]
            changes += await _remove(deps, caller.account_id, entries, note, by)
    return JSONResponse({"action": "REMOVE", "requested": len(changes)}, status_code=202)
