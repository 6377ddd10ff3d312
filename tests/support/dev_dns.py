"""The local stack's DNS server (dnsmasq, deploy/local/stack.sh) for tests that publish a sending
domain's records: written as the stack writes the demo domain's (deploy/local/dev-dns.py) into
.mailstream/dns/<domain>.conf, then the server restarted (it reads TXT records at start only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dns.resolver

REPO = Path(__file__).resolve().parents[2]
FOLDER = REPO / ".mailstream" / "dns"
SERVER = os.environ.get("MAILSTREAM_DNS_NAMESERVERS", "127.0.0.1:5354").split(",")[0]


def reload() -> None:
    subprocess.run([str(REPO / "deploy/local/stack.sh"), "restart", "dns"], check=True, timeout=30)


def publish(view: dict) -> None:
    """Publishes the records of a sending domain's view (the API's or `mailstream domains add --json`)."""
    lines = subprocess.run(
        [sys.executable, str(REPO / "deploy/local/dev-dns.py"), "domain"],
        input=json.dumps(view),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (FOLDER / f"{view['domain']}.conf").write_text(lines)
    reload()


def withdraw(domain: str) -> None:
    (FOLDER / f"{domain}.conf").unlink(missing_ok=True)
    reload()


def txt(name, timeout=5) -> bytes:
    """A TXT record as the server answers it (dkimpy's dnsfunc)."""
    host, _, port = SERVER.partition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [host], int(port or 53)
    name = name.decode() if isinstance(name, bytes) else name
    return b"".join(resolver.resolve(name, "TXT", lifetime=timeout)[0].strings)
