r"""The bounce table (deploy/policy/bounces.toml) and the classes as they travel in
DeliveryAttempted.bounce_class: "hard:<Class>" or "soft:<Class>".

One table for both kinds of bounce: the sender classifies a synchronous 5xx reply with it, the
tracker a DSN that comes back later (RFC 3464: its Status and Diagnostic-Code). The tracker
suppresses the address only for a hard class.

    fallback = "Uncategorized"     # nothing matched
    expired = "MessageExpired"     # deferred until the maximum age (soft)
    bad_domain = "BadDomain"       # NXDOMAIN, null MX

    [classes.InvalidRecipient]
    send_result = "UNDELIVERABLE"  # the HubSpot sendResult the status ends with
    patterns = ["\\b5\\.1\\.[136]\\b", "user unknown"]   # searched in "<code> <text>"
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HARD = "hard"
SOFT = "soft"
BOUNCES_FILE = "bounces.toml"


def bounce_label(name: str, *, soft: bool) -> str:
    return f"{SOFT if soft else HARD}:{name}"


def is_soft_label(label: str) -> bool | None:
    """True / False for a "soft:" / "hard:" label; None when the label has neither prefix."""
    kind, sep, _ = label.strip().lower().partition(":")
    if not sep or kind not in (HARD, SOFT):
        return None
    return kind == SOFT


class BounceTableError(ValueError):
    """bounces.toml is malformed; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class BounceClass:
    name: str
    soft: bool
    send_result: str
    patterns: tuple[re.Pattern[str], ...] = ()

    @property
    def label(self) -> str:
        """What goes into DeliveryAttempted.bounce_class: 'hard:InvalidRecipient', 'soft:MessageExpired'."""
        return bounce_label(self.name, soft=self.soft)


_DEFAULTS = {
    "fallback": BounceClass("Uncategorized", False, "UNDELIVERABLE"),
    "expired": BounceClass("MessageExpired", True, "UNDELIVERABLE"),
    "bad_domain": BounceClass("BadDomain", False, "BLOCKED_DOMAIN"),
}


@dataclass(frozen=True, slots=True)
class BounceTable:
    classes: tuple[BounceClass, ...]
    fallback: BounceClass = _DEFAULTS["fallback"]
    expired: BounceClass = _DEFAULTS["expired"]
    bad_domain: BounceClass = _DEFAULTS["bad_domain"]

    def classify(self, code: int | None, text: str) -> BounceClass:
        """The first class in file order with a pattern found in "<code> <text>"; else the fallback.
        For a DSN the text is its Status and Diagnostic-Code ("5.1.1 smtp; 550 5.1.1 user unknown")."""
        searched = f"{code or ''} {text}"
        for bounce in self.classes:
            if any(p.search(searched) for p in bounce.patterns):
                return bounce
        return self.fallback

    @classmethod
    def load(cls, path: str | Path) -> BounceTable:
        """The table in `path` (a bounces.toml, or a folder holding one); a missing file means the
        built-in classes (fallback, expired, bad domain) and no patterns."""
        path = Path(path)
        if path.is_dir():
            path = path / BOUNCES_FILE
        if not path.exists():
            return cls(())
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise BounceTableError(f"{path}: not valid TOML: {exc}") from exc
        data = _table(str(path), data, {"classes", *_DEFAULTS})
        classes = []
        for name, spec in _table(f"{path} [classes]", data.get("classes", {})).items():
            where = f"{path} [classes.{name}]"
            spec = _table(where, spec, {"soft", "send_result", "patterns"})
            patterns = spec.get("patterns", [])
            if not isinstance(patterns, list):
                raise BounceTableError(f"{where}: patterns must be a list of regexes")
            soft, send_result = spec.get("soft", False), spec.get("send_result", "UNDELIVERABLE")
            if not isinstance(soft, bool) or not isinstance(send_result, str):
                raise BounceTableError(f"{where}: soft must be true or false, send_result a string")
            classes.append(BounceClass(name, soft, send_result, tuple(_regex(where, p) for p in patterns)))
        by_name = {c.name: c for c in classes}
        named = {}
        for key, default in _DEFAULTS.items():
            if key not in data:
                named[key] = by_name.get(default.name, default)
            elif data[key] in by_name:
                named[key] = by_name[data[key]]
            else:
                raise BounceTableError(f"{path}: {key} names unknown class {data[key]!r}")
        return cls(tuple(classes), **named)


def _table(where: str, value: Any, allowed: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BounceTableError(f"{where}: expected a table")
    if allowed is not None and (unknown := sorted(set(value) - allowed)):
        raise BounceTableError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return value


def _regex(where: str, value: Any) -> re.Pattern[str]:
    try:
        return re.compile(value, re.IGNORECASE)
    except (re.error, TypeError) as exc:
        raise BounceTableError(f"{where} patterns: bad regex {value!r}: {exc}") from None
