"""`mailstream accounts create NAME`: a new account and its first API key, printed once."""

from __future__ import annotations

import argparse
import asyncio
import sys

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.gateway.adapters import store
from mailstream.gateway.keys import new_api_key


async def create_account(database_url: str, name: str, user_email: str | None = None) -> tuple[int, str]:
    pool = await create_pool(database_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
        key = new_api_key()
        return await store.create_account(pool, name, key, user_email), key
    finally:
        await pool.close()


def accounts_command(subparsers: argparse._SubParsersAction, settings) -> None:
    accounts = subparsers.add_parser("accounts", help="manage accounts")
    actions = accounts.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create an account and print its API key (shown once)")
    create.add_argument("name")
    create.add_argument("--user-email", help="also create the account's first user, who owns the key")

    def run(args: argparse.Namespace) -> None:
        account_id, key = asyncio.run(create_account(settings.database_url, args.name, args.user_email))
        print(f"created account {account_id} ({args.name}); its API key is shown only now:", file=sys.stderr)
        print(key)

    create.set_defaults(run=run)
