"""Sending-IP choice from the pools of the policy's pools.toml (weighted), read by the one loader
both the renderer and the sender use (mailstream.schemas.pools)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from mailstream.schemas.pools import PoolsError, load_pools_file

PolicyError = PoolsError  # what a malformed pools.toml raises here


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
    loaded = load_pools_file(policy_dir)
    return {
        name: Pool(name, tuple(loaded.sources[s].address for s, _ in pool.members), tuple(w for _, w in pool.members))
        for name, pool in loaded.pools.items()
    }
