"""The suppressions API's pure parts: the list's filter and cursor, its items and CSV rows, and the
checks of a bulk add or remove (the size, the addresses, the bulk clear's confirmation). No I/O.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mailstream.gateway import rules
from mailstream.gateway.views import iso

# the tracker's suppression reasons (the CHECK on its suppressions table), as people read them
NAMES = {"BOUNCED": "Bounce", "SPAM_REPORT": "Spam report", "UNSUBSCRIBED": "Unsubscribe", "MANUAL": "Manual block"}
REASONS = tuple(NAMES)
DEFAULT_ADD_REASON = "MANUAL"
MAX_NOTE = 1000
MAX_BATCH = 1000  # inputs of one bulk add or remove: one Kafka batch
CSV_COLUMNS = ("address", "reason", "createdAt", "messageId", "detail")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class InvalidInput(ValueError):
    """A bad input, naming the field (the route turns it into a 400)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True, slots=True)
class ListFilter:
    """Which suppressions a list or export shows: one reason, created at or after `since`, and
    the address containing `contains` or at `domain` (from q: "@example.com" is a domain)."""

    reason: str | None = None
    since: datetime | None = None
    contains: str = ""
    domain: str | None = None


def list_filter(*, reason: str | None, since: datetime | None, q: str | None) -> ListFilter:
    if reason is not None:
        reason = reason.upper()
        if reason not in REASONS:
            raise InvalidInput("reason", f"{reason!r} is not one of {', '.join(REASONS)}")
    if since is not None and since.tzinfo is None:
        raise InvalidInput("since", "give a time zone (e.g. 2026-12-01T00:00:00Z)")
    text = (q or "").strip().lower()
    if text.startswith("@") and "@" not in text[1:] and len(text) > 1:
        return ListFilter(reason=reason, since=since, domain=text[1:])
    return ListFilter(reason=reason, since=since, contains=text)


def page_cursor(row: dict[str, Any]) -> str:
    """The `after` that continues past this row (the list is in address, then reason, order)."""
    return base64.urlsafe_b64encode(f"{row['address']}\n{row['reason']}".encode()).decode().rstrip("=")


def parse_cursor(after: str | None) -> tuple[str, str] | None:
    """(address, reason) of page_cursor, or None for the first page; InvalidInput when malformed."""
    if not after:
        return None
    try:
        text = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("after", "use paging.next.after of the previous page") from None
    address, sep, reason = text.partition("\n")
    if not sep or reason not in REASONS or not address:
        raise InvalidInput("after", "use paging.next.after of the previous page")
    return address, reason


def item_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "address": row["address"],
        "reason": row["reason"],
        "createdAt": iso(row["created_at"]),
        "messageId": str(row["message_id"]) if row["message_id"] is not None else None,
        "detail": row["detail"],
    }


def _cell(value: Any) -> str:
    # A spreadsheet runs a cell that starts like a formula: such text is quoted (the detail is free
    # text from SMTP replies and notes, an address comes from whoever was mailed).
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def csv_lines(rows: Iterable[dict[str, Any]], *, header: bool) -> str:
    """CSV text of list rows (the header row first when asked), columns as CSV_COLUMNS."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for row in rows:
        view = item_view(row)
        writer.writerow([_cell(view[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def address(value: str, field: str = "email") -> str:
    if not isinstance(value, str) or not rules.valid_address(value):
        raise InvalidInput(field, f"{value!r} is not a valid email address")
    return value.lower()


def reason_of(value: str | None, field: str = "reason", *, default: str | None = None) -> str | None:
    if value is None:
        return default
    if value.upper() not in REASONS:
        raise InvalidInput(field, f"{value!r} is not one of {', '.join(REASONS)}")
    return value.upper()


def note_of(value: str | None, *, required: bool, field: str = "note") -> str | None:
    note = (value or "").strip()
    if len(note) > MAX_NOTE or (required and not note):
        what = "give the reason for the removal" if required else "a note"
        raise InvalidInput(field, f"{what} ({MAX_NOTE} characters at most)")
    return note or None


@dataclass(frozen=True, slots=True)
class BatchEntry:
    address: str
    reason: str | None  # None (a removal only): every reason of the address
    note: str | None = None


def batch_entries(inputs: list[dict[str, Any]], *, default_reason: str | None) -> list[BatchEntry]:
    """The entries of a bulk add or remove, in order, one per (address, reason) (the first note
    kept); the whole batch is refused (InvalidInput naming the index) if one is bad or too many."""
    if not inputs:
        raise InvalidInput("inputs", "give at least one input")
    if len(inputs) > MAX_BATCH:
        raise InvalidInput("inputs", f"at most {MAX_BATCH} inputs per request")
    entries: dict[tuple[str, str | None], BatchEntry] = {}
    for i, entry in enumerate(inputs):
        found = BatchEntry(
            address(entry.get("email"), f"inputs[{i}].email"),
            reason_of(entry.get("reason"), f"inputs[{i}].reason", default=default_reason),
            note_of(entry.get("note"), required=False, field=f"inputs[{i}].note"),
        )
        entries.setdefault((found.address, found.reason), found)
    return list(entries.values())


def check_clear_all(*, confirm: str | None, account_id: int) -> None:
    """A bulk clear (every suppression, or every one of a reason) must name the account it clears."""
    if confirm != str(account_id):
        raise InvalidInput("confirm", f"a bulk clear needs confirm set to this account's id ({account_id})")
