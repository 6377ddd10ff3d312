"""`mailstream emails save-for-automation EMAIL_ID --account ID` and
`mailstream triggers list|pause|resume --account ID [TRIGGER_ID]` and
`mailstream accounts trigger-topics ACCOUNT_ID [--set P1,P2 | --default]` (the operator's topic
prefixes of one account): on PostgreSQL directly, with the API's rules (only a draft is saved for
automation; a published email is cloned first).

Exit status: 0 done, 2 an error (unknown account, email or trigger; the email is not a draft).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.gateway.adapters import emails
from mailstream.gateway.adapters import triggers_store as store
from mailstream.gateway.adapters.invalidation import announce
from mailstream.gateway.caches import CHANNEL, email_changed
from mailstream.gateway.settings import GatewaySettings
from mailstream.gateway.trigger_models import trigger_view
from mailstream.gateway.triggers.allowed import TOPIC_SETTING, Allowed, check_topic_prefix
from mailstream.gateway.views import email_view


class Refused(Exception):
    pass


async def _with_pool(action: Callable[[asyncpg.Pool], Awaitable[Any]]) -> Any:
    pool = await create_pool(GatewaySettings.from_env().database_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
        return await action(pool)
    finally:
        await pool.close()


def _run(action: Callable[[asyncpg.Pool], Awaitable[Any]]) -> Any:
    try:
        return asyncio.run(_with_pool(action))
    except Refused as exc:
        print(f"mailstream: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


async def save_for_automation(pool: asyncpg.Pool, account_id: int, email_id: int) -> dict[str, Any]:
    email = await emails.get_email(pool, account_id, email_id)
    if email is None:
        raise Refused(f"Email {email_id} not found in account {account_id}")
    if not email.automation and not await emails.save_for_automation(pool, account_id, email_id):
        email = await emails.get_email(pool, account_id, email_id)
        raise Refused(
            f"Email {email_id} is {email.state.lower()}: only drafts can be saved for automation; "
            "clone it and save the clone"
        )
    await announce(pool, CHANNEL, email_changed(email_id))
    return email_view(await emails.get_email(pool, account_id, email_id))


def emails_command(subparsers: argparse._SubParsersAction, settings) -> None:
    parser = subparsers.add_parser("emails", help="an account's emails (templates)")
    actions = parser.add_subparsers(dest="action", required=True)
    save = actions.add_parser("save-for-automation", help="make a draft email usable by trigger rules")
    save.add_argument("email_id", type=int)
    save.add_argument("--account", type=int, required=True)

    def run_save(args: argparse.Namespace) -> None:
        view = _run(lambda pool: save_for_automation(pool, args.account, args.email_id))
        print(json.dumps(view, indent=2))

    save.set_defaults(run=run_save)


def triggers_command(subparsers: argparse._SubParsersAction, settings) -> None:
    parser = subparsers.add_parser("triggers", help="an account's automation trigger rules (docs/automation.md)")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the account's rules, as JSON")
    listing.add_argument("--account", type=int, required=True)
    pause = actions.add_parser("pause", help="stop a rule (its position is kept)")
    resume = actions.add_parser("resume", help="read on from where the rule stopped")
    for p in (pause, resume):
        p.add_argument("trigger_id")
        p.add_argument("--account", type=int, required=True)

    def run_list(args: argparse.Namespace) -> None:
        rows = _run(lambda pool: store.list_all(pool, args.account))
        print(json.dumps([trigger_view(r) for r in rows], indent=2))

    def toggle(enabled: bool):
        def run(args: argparse.Namespace) -> None:
            async def action(pool: asyncpg.Pool) -> dict[str, Any]:
                try:
                    row = await store.set_enabled(pool, args.account, args.trigger_id, enabled)
                except ValueError:
                    row = None
                if row is None:
                    raise Refused(f"Trigger {args.trigger_id} not found in account {args.account}")
                return trigger_view(row)

            print(json.dumps(_run(action), indent=2))

        return run

    listing.set_defaults(run=run_list)
    pause.set_defaults(run=toggle(False))
    resume.set_defaults(run=toggle(True))


async def trigger_topics(pool: asyncpg.Pool, account_id: int, change: str | None, back_to_default: bool) -> dict:
    """Sets (--set), clears (--default) or shows the account's topic prefixes; the trigger process
    stops a rule that is no longer allowed at its next refresh."""
    if back_to_default or change is not None:
        prefixes = None if back_to_default else tuple(p.strip() for p in change.split(",") if p.strip())
        try:
            for prefix in prefixes or ():
                check_topic_prefix(prefix)
        except ValueError as exc:
            raise Refused(str(exc)) from None
        if not await store.set_topic_prefixes(pool, account_id, prefixes):
            raise Refused(f"no account {account_id}")
    elif not await pool.fetchval("SELECT true FROM accounts WHERE id = $1", account_id):
        raise Refused(f"no account {account_id}")
    override = await store.topic_prefixes(pool, account_id)
    allowed = Allowed(topic_prefixes=GatewaySettings.from_env().trigger_topic_prefixes)
    prefixes = allowed.topic_prefixes_for(account_id, override)
    return {
        "accountId": account_id,
        "source": TOPIC_SETTING if override is None else "account",
        "topicPrefixes": list(prefixes),
        "meaning": "any topic that is not mailstream's own" if not prefixes else "topics starting with one of these",
    }


def trigger_topics_command(actions: argparse._SubParsersAction) -> None:
    """`mailstream accounts trigger-topics`: the topics an account's trigger rules may read."""
    topics = actions.add_parser(
        "trigger-topics",
        help=f"show or set the topic prefixes an account's trigger rules may read (else {TOPIC_SETTING})",
    )
    topics.add_argument("account_id", type=int)
    which = topics.add_mutually_exclusive_group()
    which.add_argument(
        "--set",
        metavar="P1,P2",
        help="the account's own prefixes, comma-separated ({account_id} is replaced); '' = any topic not mailstream's",
    )
    which.add_argument("--default", action="store_true", help=f"back to the operator's default ({TOPIC_SETTING})")

    def run(args: argparse.Namespace) -> None:
        print(json.dumps(_run(lambda pool: trigger_topics(pool, args.account_id, args.set, args.default)), indent=2))

    topics.set_defaults(run=run)
