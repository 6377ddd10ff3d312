"""pools.toml: the sending IPs and their weighted pools, the contract between the renderer (which
chooses a message's IP) and the sender (which sends from it, reading the per-IP keys it alone uses).
One loader, strict: both services read the file the same way, or neither starts.

    [sources.local-1]
    address = "127.0.0.2"          # plus keys only the sender reads (SENDER_SOURCE_KEYS)

    [pools.shared.local-1]         # a pool named "shared" is required: mail without a dedicated pool
    weight = 1
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

POOLS_FILE = "pools.toml"
SHARED_POOL = "shared"
# Per-source keys the sender reads (rates, connection limits, warm-up); the renderer ignores them.
SENDER_SOURCE_KEYS = frozenset({"max_message_rate", "connection_limit", "warmup", "warmup_started"})


class PoolsError(ValueError):
    """pools.toml is missing or malformed; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class SourceEntry:
    name: str
    address: str
    options: Mapping[str, Any] = field(default_factory=dict)  # the SENDER_SOURCE_KEYS given


@dataclass(frozen=True, slots=True)
class PoolEntry:
    name: str
    members: tuple[tuple[str, int], ...]  # (source name, weight)


@dataclass(frozen=True, slots=True)
class PoolsFile:
    path: Path
    sources: dict[str, SourceEntry]
    pools: dict[str, PoolEntry]


def _table(where: str, value: Any, allowed: set[str] | frozenset[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PoolsError(f"{where}: expected a table")
    if allowed is not None and (unknown := sorted(set(value) - set(allowed))):
        raise PoolsError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
    return value


def load_pools_file(folder: str | Path) -> PoolsFile:
    path = Path(folder) / POOLS_FILE
    if not path.exists():
        raise PoolsError(f"{path}: missing")
    try:
        data = _table(str(path), tomllib.loads(path.read_text()), {"sources", "pools"})
    except tomllib.TOMLDecodeError as exc:
        raise PoolsError(f"{path}: not valid TOML: {exc}") from exc
    sources: dict[str, SourceEntry] = {}
    addresses: dict[str, str] = {}
    for name, spec in _table(f"{path} [sources]", data.get("sources", {})).items():
        where = f"{path} [sources.{name}]"
        spec = _table(where, spec, {"address"} | SENDER_SOURCE_KEYS)
        address = spec.get("address")
        if not isinstance(address, str) or not address:
            raise PoolsError(f"{where}: address is required")
        if address in addresses:
            raise PoolsError(f"{path}: address {address} is used by two sources ({addresses[address]}, {name})")
        addresses[address] = name
        sources[name] = SourceEntry(name, address, {k: v for k, v in spec.items() if k != "address"})
    pools: dict[str, PoolEntry] = {}
    for pool_name, members in _table(f"{path} [pools]", data.get("pools", {})).items():
        where = f"{path} [pools.{pool_name}]"
        if not isinstance(members, dict) or not members:
            raise PoolsError(f"{where}: a pool needs at least one source")
        entries = []
        for source_name, spec in members.items():
            if source_name not in sources:
                raise PoolsError(f"{where}: names missing source {source_name!r}")
            weight = _table(f"{where}.{source_name}", spec, {"weight"}).get("weight", 1)
            if not isinstance(weight, int) or isinstance(weight, bool) or weight <= 0:
                raise PoolsError(f"{where}.{source_name} weight: must be a positive integer, got {weight!r}")
            entries.append((source_name, weight))
        pools[pool_name] = PoolEntry(pool_name, tuple(entries))
    if SHARED_POOL not in pools:
        raise PoolsError(f"{path}: a {SHARED_POOL!r} pool is required")
    return PoolsFile(path, sources, pools)
