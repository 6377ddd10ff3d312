"""`python -m mailstream.sender.policy check [FOLDER]`: load and validate a policy folder.

Exits 0 with a summary, or 1 with the first error (file, table and key).
"""

from __future__ import annotations

import argparse
import sys

from mailstream.sender.policy.load import load_policy
from mailstream.sender.policy.throttle import PolicyError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mailstream.sender.policy")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a policy folder (pools, shaping, warm-up, bounces)")
    check.add_argument("folder", nargs="?", default="deploy/policy")
    args = parser.parse_args(argv)
    try:
        policy = load_policy(args.folder)
    except PolicyError as exc:
        print(f"policy error: {exc}", file=sys.stderr)
        return 1
    print(
        f"policy ok: {len(policy.sources)} sources, {len(policy.pools)} pools, "
        f"{len(policy.rules)} destination rules, {len(policy.bounces.classes)} bounce classes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
