"""SendGrid's batches (Cancel Scheduled Sends API): batch ids, the pause/cancel status of a batch
and its rules, from SendGrid's v3 reference. What a status does to the batch's scheduled sends:
adapters/batches.py and the scheduler; docs/sendgrid.md#batches."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

from mailstream.gateway.sendgrid.errors import SendGridError, bad_request, error

STATUSES = ("pause", "cancel")
_PAST = {"pause": "paused", "cancel": "canceled"}
ID_CHARS = 32
_ALPHABET = string.ascii_letters + string.digits
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")  # SendGrid's pattern; longer or other strings name no batch
INVALID = "invalid batch id"  # SendGrid's message, for GET /v3/mail/batch/{id} and a Mail Send's batch_id
NOT_FOUND = "batch id not found"  # SendGrid's, for /v3/user/scheduled_sends/{id} of a batch without a status


def new_batch_id() -> str:
    """An opaque id like SendGrid's (32 letters and digits, about 190 random bits)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(ID_CHARS))


def well_formed(batch_id: str) -> bool:
    return bool(_ID.match(batch_id))


def invalid(field: str | None = None) -> SendGridError:
    return bad_request(field, INVALID)


def not_found() -> SendGridError:
    return SendGridError(404, [error(None, NOT_FOUND)])


def read_status_body(body: Any, *, with_batch_id: bool) -> tuple[str | None, str]:
    """(batch_id, status) of POST /v3/user/scheduled_sends ({batch_id, status}) or PATCH ({status});
    every problem in one 400, each naming its field."""
    allowed = {"batch_id", "status"} if with_batch_id else {"status"}
    if not isinstance(body, dict):
        raise bad_request(None, "The request body must be a JSON object")
    errors = [error(k, "is not a field of this request") for k in body if k not in allowed]
    batch_id = body.get("batch_id")
    if with_batch_id and (not isinstance(batch_id, str) or not batch_id):
        errors.append(error("batch_id", "is required: a batch id from POST /v3/mail/batch"))
    status = body.get("status")
    if status not in STATUSES:
        errors.append(error("status", "must be pause or cancel"))
    if errors:
        raise SendGridError(400, errors)
    return batch_id, status


def check_create(found: bool, current: str | None) -> None:
    """POST /v3/user/scheduled_sends: the batch is the account's and has no status yet (SendGrid:
    a batch already paused or canceled takes PATCH, or DELETE then POST)."""
    if not found:
        raise invalid("batch_id")
    if current is not None:
        raise bad_request(
            "batch_id",
            f"the batch is already {_PAST[current]}: change its status with PATCH /v3/user/scheduled_sends/{{batch_id}}"
            " or remove it with DELETE",
        )


def check_change(found: bool, current: str | None) -> None:
    """PATCH and DELETE /v3/user/scheduled_sends/{batch_id}: the batch has a status to change."""
    if not found or current is None:
        raise not_found()
