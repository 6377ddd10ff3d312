"""A decoded record -> one send of the rule's email, or why it cannot be mapped. Pure: no I/O.

    outcome = map_record(rule, record)   # Mapped(command) | Skipped(reason) | Unmappable(reason)

Skipped: the filter does not match (nothing happens). Unmappable: the record goes to the dead-letter
topic with the reason (no recipient, a path through a value that is not an object, a sendId the
template cannot render, ...).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import uuid
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from jinja2.exceptions import SecurityError

from mailstream.core.sandbox import render_bounded, start_budget
from mailstream.gateway.handlers import SendCommand
from mailstream.gateway.triggers.rule import MAX_SEND_ID, Condition, TriggerRule

MISSING = object()


class PathError(ValueError):
    """A dotted path goes through a value that has no fields (a string, a number, ...)."""


@dataclass(frozen=True, slots=True)
class Mapped:
    command: SendCommand


@dataclass(frozen=True, slots=True)
class Skipped:
    reason: str


@dataclass(frozen=True, slots=True)
class Unmappable:
    reason: str


Outcome = Mapped | Skipped | Unmappable


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted path (`customer.email`, `items.0.sku`), MISSING when a step is absent.
    A step into a list takes an index; a step into anything but an object or a list is a PathError."""
    value = record
    for step in path.split("."):
        if isinstance(value, dict):
            value = value.get(step, MISSING)
        elif isinstance(value, list):
            if not step.isdigit():
                raise PathError(f"{path}: {step!r} is not an index into a list")
            index = int(step)
            value = value[index] if index < len(value) else MISSING
        else:
            raise PathError(f"{path}: {step!r} of a {type(value).__name__}, which has no fields")
        if value is MISSING:
            return MISSING
    return value


def matches(condition: Condition, record: Any) -> bool:
    value = lookup(record, condition.path)
    if condition.op == "exists":
        return (value is not MISSING and value is not None) == condition.value
    if value is MISSING:
        return False
    if condition.op == "equals":
        return value == condition.value
    return value in condition.value


def jsonable(value: Any) -> Any:
    """Avro's Python values as JSON values (a record's customProperties travel as JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def contact_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(jsonable(value))


def render_send_id(rule: TriggerRule, record: dict[str, Any]) -> str:
    try:
        start_budget()
        send_id = render_bounded(rule.send_id, {**record, "record": record}).strip()
    except (TemplateError, SecurityError, TypeError, ValueError) as exc:
        raise PathError(f"sendIdTemplate: {type(exc).__name__}: {exc}") from None
    if not send_id:
        raise PathError("sendIdTemplate: rendered an empty sendId")
    if len(send_id) > MAX_SEND_ID:
        raise PathError(f"sendIdTemplate: the sendId is longer than {MAX_SEND_ID} characters")
    return send_id


def map_record(rule: TriggerRule, record: Any, *, require_sending_domain: bool = False) -> Outcome:
    if not isinstance(record, dict):
        return Unmappable(f"the record is a {type(record).__name__}, not an object")
    try:
        for condition in rule.conditions:
            if not matches(condition, record):
                return Skipped(f"filter: {condition.describe()}")
    except PathError as exc:
        return Unmappable(f"filter: {exc}")
    try:
        to = lookup(record, rule.recipient_field)
        if to is MISSING or to is None or to == "":
            return Unmappable(f"missing recipient field {rule.recipient_field}")
        if not isinstance(to, str):
            return Unmappable(f"recipient field {rule.recipient_field} is a {type(to).__name__}, not an address")
        contact = {}
        for name, path in rule.contact_properties.items():
            if (value := lookup(record, path)) is not MISSING:
                contact[name] = contact_value(value)
        custom = {}
        for name, path in rule.custom_properties.items():
            if (value := lookup(record, path)) is not MISSING:
                custom[name] = jsonable(value)
        send_id = render_send_id(rule, record)
    except PathError as exc:
        return Unmappable(str(exc))
    return Mapped(
        SendCommand(
            email_id=rule.email_id,
            to=to.strip(),
            require_single_send_api=False,
            send_id=send_id,
            contact_properties=contact,
            custom_properties=custom,
            require_sending_domain=require_sending_domain,
            trigger_id=rule.id,
        )
    )
