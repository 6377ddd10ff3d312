"""Sending-IP choice from the pools of deploy/policy/pools.toml (weighted).

[sources.local-1]
address = "127.0.0.2"

[pools.shared.local-1]
weight = 1
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass
from pathlib import Path


class PolicyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    addresses: tuple[str, ...]
    weights: tuple[int, ...]

    def choose(self, rng: random.Random = random._inst) -> str:  # type: ignore[attr-defined]
        if len(self.addresses) == 1:
            return self.addresses[0]
        return rng.choices(self.addresses, weights=self.weights)[0]


def load_pools(policy_dir: str | Path) -> dict[str, Pool]:
    path = Path(policy_dir) / "pools.toml"
    data = tomllib.loads(path.read_text())
    sources = {name: spec["address"] for name, spec in data.get("sources", {}).items()}
    pools = {}
    for pool_name, members in data.get("pools", {}).items():
        missing = [m for m in members if m not in sources]
        if missing:
            raise PolicyError(f"{path}: pool {pool_name!r} names undefined sources {missing}")
        weights = tuple(int(spec.get("weight", 1)) for spec in members.values())
        if not members or any(w <= 0 for w in weights):
            raise PolicyError(f"{path}: pool {pool_name!r} needs members with positive weights")
        pools[pool_name] = Pool(pool_name, tuple(sources[m] for m in members), weights)
    if "shared" not in pools:
        raise PolicyError(f"{path}: a 'shared' pool is required")
    return pools
