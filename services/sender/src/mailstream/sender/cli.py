"""`mailstream pools assign|unassign|list`: an account's dedicated IP pool (account_pools).

The pool must be one of the sending policy's pools (MAILSTREAM_POLICY_DIR); the renderer sends
the account's TRANSACTIONAL mail from it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import asyncpg

from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.sender.policy.load import load_policy
from mailstream.sender.policy.throttle import PolicyError
from mailstream.sender.settings import SenderSettings


async def _connect(database_url: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database_url)
    await apply_migrations(conn, "sender", migrations_of("mailstream.sender"))
    return conn


async def assign(database_url: str, policy_dir: str, account_id: int, pool: str) -> None:
    pools = load_policy(policy_dir).pools
    if pool not in pools:
        raise PolicyError(f"no pool {pool!r} in {policy_dir}/pools.toml (pools: {', '.join(sorted(pools))})")
    conn = await _connect(database_url)
    try:
        await conn.execute(
            """INSERT INTO account_pools (account_id, pool) VALUES ($1, $2)
               ON CONFLICT (account_id) DO UPDATE SET pool = EXCLUDED.pool, assigned_at = now()""",
            account_id,
            pool,
        )
    finally:
        await conn.close()


async def unassign(database_url: str, account_id: int) -> None:
    conn = await _connect(database_url)
    try:
        await conn.execute("DELETE FROM account_pools WHERE account_id = $1", account_id)
    finally:
        await conn.close()


async def listing(database_url: str) -> list[tuple[int, str]]:
    conn = await _connect(database_url)
    try:
        return [
            (r["account_id"], r["pool"])
            for r in await conn.fetch("SELECT account_id, pool FROM account_pools ORDER BY account_id")
        ]
    finally:
        await conn.close()


def pools_command(subparsers: argparse._SubParsersAction, settings) -> None:
    policy_dir = SenderSettings.from_env().policy_dir
    pools = subparsers.add_parser("pools", help="accounts' dedicated IP pools")
    actions = pools.add_subparsers(dest="action", required=True)
    assign_p = actions.add_parser("assign", help="send an account's transactional mail from a pool")
    assign_p.add_argument("account_id", type=int)
    assign_p.add_argument("pool")
    unassign_p = actions.add_parser("unassign", help="back to the shared pool")
    unassign_p.add_argument("account_id", type=int)
    list_p = actions.add_parser("list", help="accounts with a dedicated pool")

    def run_assign(args: argparse.Namespace) -> None:
        try:
            asyncio.run(assign(settings.database_url, policy_dir, args.account_id, args.pool))
        except PolicyError as exc:
            print(f"mailstream: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"account {args.account_id} now sends transactional mail from pool {args.pool}", file=sys.stderr)

    assign_p.set_defaults(run=run_assign)
    unassign_p.set_defaults(run=lambda a: asyncio.run(unassign(settings.database_url, a.account_id)))

    def run_list(args: argparse.Namespace) -> None:
        for account_id, pool in asyncio.run(listing(settings.database_url)):
            print(f"{account_id}\t{pool}")

    list_p.set_defaults(run=run_list)
