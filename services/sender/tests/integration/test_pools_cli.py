"""`mailstream pools`: an account's dedicated pool, against the real PostgreSQL server."""

import random
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from mailstream.core.settings import CommonSettings

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).with_name("mailstream"))


def mailstream(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "pools", *args], capture_output=True, text=True, timeout=60)


async def pool_of(account_id: int) -> str | None:
    conn = await asyncpg.connect(CommonSettings.from_env().database_url)
    try:
        return await conn.fetchval("SELECT pool FROM account_pools WHERE account_id = $1", account_id)
    finally:
        await conn.close()


async def test_assign_list_and_unassign_a_dedicated_pool():
    account_id = random.randint(10**9, 2 * 10**9)
    assert mailstream("assign", str(account_id), "pair").returncode == 0
    assert await pool_of(account_id) == "pair"
    assert f"{account_id}\tpair" in mailstream("list").stdout
    assert mailstream("assign", str(account_id), "shared").returncode == 0
    assert await pool_of(account_id) == "shared"
    assert mailstream("unassign", str(account_id)).returncode == 0
    assert await pool_of(account_id) is None


async def test_a_pool_the_policy_does_not_have_is_refused():
    account_id = random.randint(10**9, 2 * 10**9)
    result = mailstream("assign", str(account_id), "no-such-pool")
    assert result.returncode == 2 and "no pool 'no-such-pool'" in result.stderr
    assert await pool_of(account_id) is None
