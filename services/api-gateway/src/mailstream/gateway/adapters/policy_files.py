"""The sending policy's pools.toml (MAILSTREAM_POLICY_DIR, the file the renderer and the sender
read): which pools an account may be given and their IPs. Read on each use: assignments are
rare and an operator's edit is seen without a restart."""

from __future__ import annotations

from mailstream.schemas.pools import PoolsFile, load_pools_file


def load_pools_policy(policy_dir: str) -> PoolsFile:
    return load_pools_file(policy_dir)
