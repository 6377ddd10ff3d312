"""Load and validate the policy folder: pools.toml, shaping.toml, warmup.toml, bounces.toml.

Unknown keys, zero limits, a pool naming a missing source, a bad regex or an unknown warm-up
schedule are errors (PolicyError naming the file and key). Missing shaping/warmup/bounces
files mean built-in defaults; pools.toml is required and read by the loader the renderer uses too
(mailstream.schemas.pools), bounces.toml by the one the tracker uses (mailstream.schemas.bounces).
"""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

from mailstream.schemas.bounces import BOUNCES_FILE, BounceTable, BounceTableError
from mailstream.schemas.pools import PoolsError, load_pools_file
from mailstream.sender.policy.model import (
    Action,
    Automation,
    DestinationRule,
    Policy,
    Pool,
    Shaping,
    Source,
    Tls,
    WarmupSchedule,
)
from mailstream.sender.policy.throttle import PolicyError, ThrottleSpec, parse_duration

_SHAPING_KEYS = {
    "connection_limit",
    "max_connection_rate",
    "max_message_rate",
    "max_deliveries_per_connection",
    "tls",
    "automation",
}
_AUTOMATION_KEYS = {"regex", "action", "duration", "max_message_rate", "connection_limit", "trigger"}


def _read(path: Path, required: bool = False) -> dict[str, Any]:
    if not path.exists():
        if required:
            raise PolicyError(f"{path}: missing")
        return {}
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path}: not valid TOML: {exc}") from exc


def _keys(where: str, table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise PolicyError(f"{where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PolicyError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return table


def _positive_int(where: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise PolicyError(f"{where}: must be a positive integer, got {value!r}")
    return value


def _rate(where: str, value: Any) -> ThrottleSpec:
    try:
        return ThrottleSpec.parse(value)
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from None


def _regex(where: str, value: Any) -> re.Pattern[str]:
    try:
        return re.compile(value, re.IGNORECASE)
    except (re.error, TypeError) as exc:
        raise PolicyError(f"{where}: bad regex {value!r}: {exc}") from None


def _warmups(path: Path) -> dict[str, WarmupSchedule]:
    data = _keys(str(path), _read(path), {"schedules"})
    schedules = {}
    for name, spec in data.get("schedules", {}).items():
        where = f"{path} [schedules.{name}]"
        spec = _keys(where, spec, {"period", "caps"})
        caps = spec.get("caps")
        if not isinstance(caps, list) or not caps:
            raise PolicyError(f"{where}: caps must be a non-empty list of positive integers")
        caps = tuple(_positive_int(f"{where} caps", c) for c in caps)
        period = {"hour": 3600.0, "day": 86400.0}.get(spec.get("period", "hour"))
        if period is None:
            raise PolicyError(f"{where}: period must be 'hour' or 'day'")
        schedules[name] = WarmupSchedule(name, period, caps)
    return schedules


def _sources_and_pools(folder: Path, warmups: dict[str, WarmupSchedule]) -> tuple[dict[str, Source], dict[str, Pool]]:
    """pools.toml through the one loader the renderer uses too; the per-IP keys read here."""
    try:
        loaded = load_pools_file(folder)
    except PoolsError as exc:
        raise PolicyError(str(exc)) from exc
    sources: dict[str, Source] = {}
    for name, entry in loaded.sources.items():
        where = f"{loaded.path} [sources.{name}]"
        spec = entry.options
        warmup = None
        if "warmup" in spec:
            if spec["warmup"] not in warmups:
                raise PolicyError(f"{where}: unknown warm-up schedule {spec['warmup']!r} (see warmup.toml)")
            if "warmup_started" in spec and not isinstance(spec["warmup_started"], date):
                raise PolicyError(f"{where}: warmup_started must be a date (YYYY-MM-DD), or left out (first use)")
            warmup = warmups[spec["warmup"]]
        sources[name] = Source(
            name=name,
            address=entry.address,
            max_message_rate=_rate(f"{where} max_message_rate", spec["max_message_rate"])
            if "max_message_rate" in spec
            else None,
            connection_limit=_positive_int(f"{where} connection_limit", spec["connection_limit"])
            if "connection_limit" in spec
            else None,
            warmup=warmup,
            warmup_started=spec.get("warmup_started") if warmup else None,
        )
    pools = {
        name: Pool(name, tuple((sources[source], weight) for source, weight in pool.members))
        for name, pool in loaded.pools.items()
    }
    return sources, pools


def _shaping(where: str, spec: Any, base: Shaping) -> Shaping:
    spec = _keys(where, spec, _SHAPING_KEYS)
    values: dict[str, Any] = {}
    for key in ("connection_limit", "max_deliveries_per_connection"):
        if key in spec:
            values[key] = _positive_int(f"{where} {key}", spec[key])
    for key in ("max_connection_rate", "max_message_rate"):
        if key in spec:
            values[key] = _rate(f"{where} {key}", spec[key])
    if "tls" in spec:
        try:
            values["tls"] = Tls(str(spec["tls"]).lower())
        except ValueError:
            raise PolicyError(f"{where}: tls must be one of {[t.value for t in Tls]}") from None
    automation = list(base.automation)
    for n, rule in enumerate(spec.get("automation", [])):
        automation.append(_automation(f"{where} automation[{n}]", rule))
    values["automation"] = tuple(automation)
    return Shaping(**{**_as_dict(base), **values})


def _as_dict(shaping: Shaping) -> dict[str, Any]:
    return {name: getattr(shaping, name) for name in Shaping.__slots__}


def _automation(where: str, rule: Any) -> Automation:
    rule = _keys(where, rule, _AUTOMATION_KEYS)
    if "regex" not in rule or "action" not in rule or "duration" not in rule:
        raise PolicyError(f"{where}: regex, action and duration are required")
    try:
        action = Action(rule["action"])
    except ValueError:
        raise PolicyError(f"{where}: action must be one of {[a.value for a in Action]}") from None
    try:
        duration = parse_duration(rule["duration"])
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from None
    auto = Automation(
        regex=_regex(f"{where} regex", rule["regex"]),
        action=action,
        duration=duration,
        max_message_rate=_rate(f"{where} max_message_rate", rule["max_message_rate"])
        if "max_message_rate" in rule
        else None,
        connection_limit=_positive_int(f"{where} connection_limit", rule["connection_limit"])
        if "connection_limit" in rule
        else None,
        trigger=_rate(f"{where} trigger", rule["trigger"]) if "trigger" in rule else None,
    )
    if action is Action.THROTTLE and auto.max_message_rate is None and auto.connection_limit is None:
        raise PolicyError(f"{where}: a throttle needs max_message_rate and/or connection_limit")
    return auto


def _destinations(path: Path) -> tuple[Shaping, tuple[DestinationRule, ...]]:
    data = _keys(str(path), _read(path), {"default", "domain", "provider"})
    default = _shaping(f"{path} [default]", data.get("default", {}), Shaping())
    rules: list[DestinationRule] = []
    for domain, spec in data.get("domain", {}).items():
        rules.append(
            DestinationRule(domain.lower(), _shaping(f"{path} [domain.{domain}]", spec, default), (domain.lower(),))
        )
    for name, spec in data.get("provider", {}).items():
        where = f"{path} [provider.{name}]"
        spec = dict(_keys(where, spec, _SHAPING_KEYS | {"mx_suffixes", "domains"}))
        suffixes, domains = spec.pop("mx_suffixes", []), spec.pop("domains", [])
        if not suffixes and not domains:
            raise PolicyError(f"{where}: needs mx_suffixes and/or domains to match")
        rules.append(
            DestinationRule(
                name,
                _shaping(where, spec, default),
                tuple(d.lower() for d in domains),
                tuple(s.lower() for s in suffixes),
            )
        )
    return default, tuple(rules)


def _bounces(path: Path) -> BounceTable:
    """bounces.toml through the loader the tracker uses too (it classifies late bounces)."""
    try:
        return BounceTable.load(path)
    except BounceTableError as exc:
        raise PolicyError(str(exc)) from exc


def load_policy(folder: str | Path) -> Policy:
    folder = Path(folder)
    if not folder.is_dir():
        raise PolicyError(f"{folder}: not a folder")
    warmups = _warmups(folder / "warmup.toml")
    sources, pools = _sources_and_pools(folder, warmups)
    default, rules = _destinations(folder / "shaping.toml")
    bounces = _bounces(folder / BOUNCES_FILE)
    by_address = {source.address: source for source in sources.values()}  # unique: the loader checks
    return Policy(
        sources=sources,
        pools=pools,
        default=default,
        rules=rules,
        bounces=bounces,
        by_address=by_address,
    )
