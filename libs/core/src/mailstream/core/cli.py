"""The `mailstream` admin command. Packages add subcommands through the
`mailstream.commands` entry point: a function (subparsers, settings) -> None that sets `run`."""

from __future__ import annotations

import argparse
import sys
from importlib import metadata

from mailstream.core.schema_registry import read_with_schema_registry
from mailstream.core.settings import CommonSettings, SettingsError


def main(argv: list[str] | None = None) -> int:
    try:
        settings = CommonSettings.from_env()
    except SettingsError as exc:
        print(f"mailstream: {exc}", file=sys.stderr)
        return 2
    read_with_schema_registry(settings.schema_registry_url)  # records in Confluent's format decode too
    parser = argparse.ArgumentParser(prog="mailstream", description="mailstream administration")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for ep in sorted(metadata.entry_points(group="mailstream.commands"), key=lambda e: e.name):
        ep.load()(subparsers, settings)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
