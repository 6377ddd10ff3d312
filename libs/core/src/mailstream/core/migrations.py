"""Plain SQL migrations, applied in file-name order and recorded in schema_migrations.

Each service owns its tables and ships them as `<package>/migrations/NNNN_name.sql`; it
applies its own at start, under an advisory lock so that replicas do not race. Packages list
themselves under the `mailstream.migrations` entry point so that `mailstream db migrate`
applies all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib import metadata, resources
from importlib.resources.abc import Traversable

import asyncpg

LOCK_KEY = 0x6D61696C  # "mail": one advisory lock for every component's migrations


def migrations_of(package: str) -> Traversable:
    return resources.files(package).joinpath("migrations")


async def apply_migrations(conn: asyncpg.Connection, component: str, directory: Traversable) -> list[str]:
    """Apply the component's pending migrations in file-name order; returns the names applied."""
    files = sorted((f for f in directory.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   component text NOT NULL,
                   version text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (component, version))"""
        )
        done = {
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migrations WHERE component = $1", component)
        }
        for f in files:
            if f.name in done:
                continue
            await conn.execute(f.read_text())
            await conn.execute("INSERT INTO schema_migrations (component, version) VALUES ($1, $2)", component, f.name)
            applied_now.append(f.name)
    return applied_now


def registered_components() -> dict[str, str]:
    """component name -> package holding its migrations/ folder."""
    return {ep.name: ep.value for ep in metadata.entry_points(group="mailstream.migrations")}


async def migrate_all(database_url: str) -> dict[str, list[str]]:
    conn = await asyncpg.connect(database_url)
    try:
        return {
            name: await apply_migrations(conn, name, migrations_of(pkg))
            for name, pkg in sorted(registered_components().items())
        }
    finally:
        await conn.close()


def db_command(subparsers: argparse._SubParsersAction, settings) -> None:
    db = subparsers.add_parser("db", help="database schema")
    actions = db.add_subparsers(dest="action", required=True)
    migrate = actions.add_parser("migrate", help="apply every component's pending SQL migrations")
    migrate.set_defaults(run=lambda a: _report(asyncio.run(migrate_all(settings.database_url))))


def _report(result: dict[str, list[str]]) -> None:
    for component, names in result.items():
        print(f"{component}: {', '.join(names) if names else 'up to date'}", file=sys.stderr)
