"""`mailstream domains add|verify|show|list|delete` and `mailstream ips assign|unassign|list`: the
domain settings of one account (--account ID), on PostgreSQL directly through the same
DomainService the API uses.

    mailstream domains add shop.example --account 7 --json    # the records to publish, as JSON
    mailstream domains verify shop.example --account 7        # exit 0 only when verified
    mailstream ips assign pair --account 7

Exit status: 0 done (verify: verified), 1 verify ran but the domain is not verified, 2 an error
(unknown account or domain, bad name, unknown pool).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from mailstream.core.db import create_pool
from mailstream.core.migrations import apply_migrations, migrations_of
from mailstream.gateway.adapters import domains_store
from mailstream.gateway.domain_handlers import DomainService
from mailstream.gateway.domain_models import SendingDomainView, domain_view, ips_view
from mailstream.gateway.errors import ApiError
from mailstream.gateway.settings import GatewaySettings


async def with_service(account_id: int | None, action: Callable[[DomainService], Awaitable[Any]]) -> Any:
    settings = GatewaySettings.from_env()
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        async with pool.acquire() as conn:
            await apply_migrations(conn, "gateway", migrations_of("mailstream.gateway"))
        if account_id is not None and not await domains_store.account_exists(pool, account_id):
            raise ApiError(404, "OBJECT_NOT_FOUND", f"no account {account_id}")
        return await action(DomainService(pool, settings.domain_config()))
    finally:
        await pool.close()


def run_action(account_id: int | None, action: Callable[[DomainService], Awaitable[Any]]) -> Any:
    try:
        return asyncio.run(with_service(account_id, action))
    except ApiError as exc:
        print(f"mailstream: {exc.message}", file=sys.stderr)
        raise SystemExit(2) from None


def print_domain(view: SendingDomainView, as_json: bool) -> None:
    if as_json:
        print(json.dumps(view.model_dump(mode="json"), indent=2))
        return
    print(f"{view.domain}  {view.state}  (DKIM selector {view.dkimSelector})")
    for r in view.records:
        need = "required" if r.required else "recommended"
        print(f"  {r.kind:<12} {r.type:<5} {r.host}\n      {r.value}\n      {r.status} ({need}): {r.reason}")


def domains_command(subparsers: argparse._SubParsersAction, settings) -> None:
    domains = subparsers.add_parser("domains", help="an account's sending domains (DKIM keys, DNS records)")
    actions = domains.add_subparsers(dest="action", required=True)

    def action(name: str, help: str, *, domain: bool = True, json_option: bool = True) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help)
        if domain:
            parser.add_argument("domain")
        parser.add_argument("--account", type=int, required=True, metavar="ID", help="the account's id")
        if json_option:
            parser.add_argument("--json", action="store_true", help="print JSON (type/host/value of each record)")
        return parser

    def add(args: argparse.Namespace) -> None:
        print_domain(domain_view(run_action(args.account, lambda s: s.add(args.account, args.domain))), args.json)

    def show(args: argparse.Namespace) -> None:
        print_domain(domain_view(run_action(args.account, lambda s: s.show(args.account, args.domain))), args.json)

    def verify(args: argparse.Namespace) -> None:
        view = domain_view(run_action(args.account, lambda s: s.verify(args.account, args.domain)))
        print_domain(view, args.json)
        if not view.verified:
            raise SystemExit(1)

    def listing(args: argparse.Namespace) -> None:
        found = [domain_view(d) for d in run_action(args.account, lambda s: s.list_domains(args.account, limit=10_000))]
        if args.json:
            print(json.dumps([v.model_dump(mode="json") for v in found], indent=2))
        for view in [] if args.json else found:
            print(f"{view.domain}\t{view.state}")

    def delete(args: argparse.Namespace) -> None:
        run_action(args.account, lambda s: s.delete(args.account, args.domain))
        print(f"deleted {args.domain} (its DKIM key with it)", file=sys.stderr)

    action("add", "add a sending domain: make its DKIM key, print the DNS records to publish").set_defaults(run=add)
    action("show", "a domain's records and their last status").set_defaults(run=show)
    action("verify", "check the domain's DNS records now (exit 0 only when verified)").set_defaults(run=verify)
    action("list", "the account's sending domains", domain=False).set_defaults(run=listing)
    action("delete", "remove a sending domain and its key", json_option=False).set_defaults(run=delete)


def ips_command(subparsers: argparse._SubParsersAction, settings) -> None:
    ips = subparsers.add_parser("ips", help="an account's dedicated IP pool (a pool of pools.toml)")
    actions = ips.add_subparsers(dest="action", required=True)
    assign = actions.add_parser("assign", help="send the account's transactional mail from a dedicated pool")
    assign.add_argument("pool")
    assign.add_argument("--account", type=int, required=True, metavar="ID")
    unassign = actions.add_parser("unassign", help="back to the shared pool")
    unassign.add_argument("--account", type=int, required=True, metavar="ID")
    listing = actions.add_parser("list", help="the account's pool, IPs and readiness (without --account: the pools)")
    listing.add_argument("--account", type=int, metavar="ID")
    listing.add_argument("--json", action="store_true")

    def print_status(view, as_json: bool = False) -> None:
        if as_json:
            print(json.dumps(view.model_dump(mode="json"), indent=2))
        else:
            print(
                f"pool {view.pool or '(shared)'}  ips {', '.join(view.ips) or '-'}  ready {view.ready}: {view.reason}"
            )

    def run_assign(args: argparse.Namespace) -> None:
        print_status(ips_view(run_action(args.account, lambda s: s.assign(args.account, args.pool))))

    def run_unassign(args: argparse.Namespace) -> None:
        run_action(args.account, lambda s: s.unassign(args.account))
        print(f"account {args.account} sends from the shared pool", file=sys.stderr)

    def run_list(args: argparse.Namespace) -> None:
        if args.account is not None:
            print_status(ips_view(run_action(args.account, lambda s: s.ip_status(args.account))), args.json)
            return

        async def pools(service: DomainService) -> dict[str, list[str]]:
            policy = service.policy()
            return {n: [policy.sources[s].address for s, _ in p.members] for n, p in sorted(policy.pools.items())}

        found = run_action(None, pools)
        if args.json:
            print(json.dumps(found, indent=2))
        for name, addresses in [] if args.json else found.items():
            print(f"{name}\t{', '.join(addresses)}")

    assign.set_defaults(run=run_assign)
    unassign.set_defaults(run=run_unassign)
    listing.set_defaults(run=run_list)
