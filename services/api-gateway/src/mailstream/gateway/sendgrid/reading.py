"""Reading a JSON body field by field: each problem is one error naming its field (a dotted path
with list indexes), all of them collected for one 400."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mailstream.gateway.rules import valid_address
from mailstream.gateway.sendgrid.errors import error, unsupported

MAX_SEND_AT_AHEAD_S = 72 * 3600
# Headers the message's structure or mailstream's tracking owns: set by the fields, never by `headers`.
RESERVED_HEADERS = frozenset(
    {"to", "cc", "bcc", "from", "sender", "reply-to", "subject", "date", "message-id", "mime-version",
     "content-type", "content-transfer-encoding", "content-disposition", "content-id", "received",
     "dkim-signature", "return-path", "x-sg-id", "x-sg-eid", "list-unsubscribe", "list-unsubscribe-post"}
)  # fmt: skip
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 field name: printable ASCII but ':'


@dataclass(frozen=True, slots=True)
class Address:
    email: str
    name: str | None = None


class Reader:
    """Collects every problem of the body, each naming its field (dotted, with list indexes)."""

    def __init__(self) -> None:
        self.errors: list[dict[str, Any]] = []

    def fail(self, where: str, message: str) -> None:
        self.errors.append(error(where, message))

    def object(self, value: Any, where: str, allowed: frozenset[str], unsupported_: frozenset[str] = frozenset()):
        if not isinstance(value, dict):
            self.fail(where, "must be an object")
            return {}
        prefix = f"{where}." if where else ""
        for key in value:
            if key in unsupported_:
                self.errors.append(unsupported(f"{prefix}{key}"))
            elif key not in allowed:
                self.fail(f"{prefix}{key}", "is not a field of the Mail Send request")
        return value

    def text(self, value: Any, where: str, *, required: bool = False, header: bool = False) -> str | None:
        if value is None:
            if required:
                self.fail(where, "is required")
            return None
        if not isinstance(value, str):
            self.fail(where, "must be a string")
            return None
        if required and not value:
            self.fail(where, "must not be empty")
            return None
        if header and any(c in value for c in "\r\n\0"):
            self.fail(where, "must not contain line breaks")
            return None
        return value

    def address(self, value: Any, where: str) -> Address | None:
        obj = self.object(value, where, frozenset({"email", "name"}))
        if not obj:
            if isinstance(value, dict):
                self.fail(f"{where}.email", "is required")
            return None
        email = self.text(obj.get("email"), f"{where}.email", required=True)
        name = self.text(obj.get("name"), f"{where}.name", header=True)
        if email is not None and not valid_address(email):
            self.fail(f"{where}.email", "does not contain a valid address")
            return None
        return Address(email, name or None) if email is not None else None

    def addresses(self, value: Any, where: str, *, required: bool = False) -> tuple[Address, ...]:
        if value is None:
            if required:
                self.fail(where, "is required")
            return ()
        if not isinstance(value, list) or (required and not value):
            self.fail(where, "must be a non-empty list of {email, name}" if required else "must be a list")
            return ()
        found = [self.address(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(a for a in found if a is not None)

    def strings(self, value: Any, where: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(where, "must be an object of strings")
            return {}
        bad = [k for k, v in value.items() if not isinstance(v, str) or "\0" in k or "\0" in v]
        for key in bad:
            self.fail(f"{where}.{key}", "must be a string (without NUL)")
        return {k: v for k, v in value.items() if k not in bad}

    def headers(self, value: Any, where: str) -> dict[str, str]:
        found = self.strings(value, where)
        for name, v in list(found.items()):
            if not _HEADER_NAME.match(name):
                self.fail(f"{where}.{name}", "is not a valid header name")
            elif name.lower() in RESERVED_HEADERS or name.lower().startswith("x-mailstream-"):
                self.fail(f"{where}.{name}", "is set by the request's own fields or by mailstream; not allowed")
            elif any(c in v for c in "\r\n\0"):
                self.fail(f"{where}.{name}", "must not contain line breaks")
            else:
                continue
            del found[name]
        return found

    def send_at(self, value: Any, where: str, now: float) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            self.fail(where, "must be a UNIX timestamp (seconds)")
            return None
        if value > now + MAX_SEND_AT_AHEAD_S:
            self.fail(where, "must be at most 72 hours in the future")
            return None
        return value

    def flag(self, value: Any, where: str, allowed: frozenset[str] = frozenset({"enable"})) -> bool | None:
        obj = self.object(value, where, allowed)
        enable = obj.get("enable") if obj else None
        if enable is not None and not isinstance(enable, bool):
            self.fail(f"{where}.enable", "must be a boolean")
            return None
        return enable
