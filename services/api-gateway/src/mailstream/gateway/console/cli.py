"""`mailstream users set-password EMAIL [--account ID] [--password-stdin]`: a user's console password.

The user must exist (`mailstream accounts create NAME --user-email EMAIL`, or POST /mailstream/v1/users).
Setting a password ends the user's console sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.gateway.console.auth import password_problem, set_password


async def set_user_password(database_url: str, email: str, password: str, account_id: int | None) -> list[int]:
    pool = await create_pool(database_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
        return await set_password(pool, email, password, account_id)
    finally:
        await pool.close()


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New console password: ")
    if getpass.getpass("Again: ") != first:
        sys.exit("the two passwords differ: nothing changed")
    return first


def users_command(subparsers: argparse._SubParsersAction, settings) -> None:
    users = subparsers.add_parser("users", help="manage account users (console sign-in)")
    actions = users.add_subparsers(dest="action", required=True)
    setpw = actions.add_parser("set-password", help="set the console password of a user")
    setpw.add_argument("email")
    setpw.add_argument("--account", type=int, help="the account id, when several accounts have a user with this email")
    setpw.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")

    def run(args: argparse.Namespace) -> None:
        password = read_password(args.password_stdin)
        problem = password_problem(password)
        if problem:
            sys.exit(f"{problem}: nothing changed")
        accounts = asyncio.run(set_user_password(settings.database_url, args.email, password, args.account))
        if not accounts:
            sys.exit(f"no user {args.email} (create one with `mailstream accounts create NAME --user-email EMAIL`)")
        if len(accounts) > 1:
            sys.exit(f"{args.email} is a user of accounts {', '.join(map(str, accounts))}: choose one with --account")
        print(f"console password set for {args.email} (account {accounts[0]}); its sessions ended", file=sys.stderr)

    setpw.set_defaults(run=run)
