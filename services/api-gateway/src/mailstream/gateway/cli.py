"""`mailstream accounts create NAME`: a new account and its first API key, printed once;
`mailstream accounts add-key ACCOUNT_ID`: one more key. Both take the key's scopes (--scopes
send,tokens; default all) and its own request limit (--rate-limit 100/10s; default the gateway's).
`mailstream accounts trigger-topics ACCOUNT_ID [--set P1,P2 | --default]`: trigger_cli.py."""

from __future__ import annotations

import argparse
import asyncio
import sys

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.gateway.adapters import store
from mailstream.gateway.keys import new_api_key
from mailstream.gateway.limits import RateSpec
from mailstream.gateway.scopes import ALL_SCOPES, HUBSPOT_SCOPES, SCOPES, parse_scopes
from mailstream.gateway.trigger_cli import trigger_topics_command


async def _migrated_pool(database_url: str):
    pool = await create_pool(database_url, max_size=2)
    async with pool.acquire() as conn:
        await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
    return pool


async def create_account(
    database_url: str,
    name: str,
    user_email: str | None = None,
    *,
    scopes: frozenset[str] = ALL_SCOPES,
    rate_limit: RateSpec | None = None,
) -> tuple[int, str]:
    pool = await _migrated_pool(database_url)
    try:
        key = new_api_key()
        account_id = await store.create_account(pool, name, key, user_email, scopes=scopes, rate_limit=rate_limit)
        return account_id, key
    finally:
        await pool.close()


async def add_key(
    database_url: str, account_id: int, name: str, *, scopes: frozenset[str], rate_limit: RateSpec | None
) -> str | None:
    """A new key of the account (None: no such account)."""
    pool = await _migrated_pool(database_url)
    try:
        if not await pool.fetchval("SELECT true FROM accounts WHERE id = $1", account_id):
            return None
        key = new_api_key()
        await store.insert_api_key(
            pool, account_id, key, name=name, created_by=None, scopes=scopes, rate_limit=rate_limit
        )
        return key
    finally:
        await pool.close()


def _scopes(text: str) -> frozenset[str]:
    try:
        return parse_scopes(text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text: str) -> RateSpec:
    try:
        return RateSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _key_options(parser: argparse.ArgumentParser) -> None:
    names = ", ".join([*SCOPES, *HUBSPOT_SCOPES])
    parser.add_argument(
        "--scopes", type=_scopes, default=ALL_SCOPES, help=f"comma-separated scopes of the key ({names}); default all"
    )
    parser.add_argument(
        "--rate-limit",
        type=_rate,
        default=None,
        help="the key's own request limit, e.g. 100/10s (default: the gateway's)",
    )


def accounts_command(subparsers: argparse._SubParsersAction, settings) -> None:
    accounts = subparsers.add_parser("accounts", help="manage accounts and their API keys")
    actions = accounts.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create an account and print its API key (shown once)")
    create.add_argument("name")
    create.add_argument("--user-email", help="also create the account's first user, who owns the key")
    _key_options(create)

    def run(args: argparse.Namespace) -> None:
        account_id, key = asyncio.run(
            create_account(
                settings.database_url, args.name, args.user_email, scopes=args.scopes, rate_limit=args.rate_limit
            )
        )
        print(f"created account {account_id} ({args.name}); its API key is shown only now:", file=sys.stderr)
        print(key)

    create.set_defaults(run=run)

    add = actions.add_parser("add-key", help="create one more API key of an account and print it (shown once)")
    add.add_argument("account_id", type=int)
    add.add_argument("--name", default="", help="a name to tell the key apart in listings")
    _key_options(add)

    def run_add(args: argparse.Namespace) -> None:
        key = asyncio.run(
            add_key(settings.database_url, args.account_id, args.name, scopes=args.scopes, rate_limit=args.rate_limit)
        )
        if key is None:
            print(f"no account {args.account_id}", file=sys.stderr)
            sys.exit(1)
        print(f"API key of account {args.account_id}, shown only now:", file=sys.stderr)
        print(key)

    add.set_defaults(run=run_add)
    trigger_topics_command(actions)
