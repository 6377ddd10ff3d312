"""The local stack's DNS server (dnsmasq) for tests that publish a sending domain's records:
`deploy/local/stack.sh dns-publish` serves a domain view's records (as `make run` serves the demo
domain's), `dns-withdraw` stops; `txt` reads a record back as dkimpy's dnsfunc."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.resolver

from testkit import free_port

STACK = str(Path(__file__).resolve().parents[2] / "deploy/local/stack.sh")
SERVER = os.environ.get("MAILSTREAM_DNS_NAMESERVERS", "127.0.0.1:5354").split(",")[0]


def publish(view: dict) -> None:
    """Serves the records of a sending domain's view (the API's or `mailstream domains add --json`)."""
    subprocess.run([STACK, "dns-publish"], input=json.dumps(view), text=True, check=True, timeout=30)


def withdraw(domain: str) -> None:
    subprocess.run([STACK, "dns-withdraw", domain], check=True, timeout=30)


def txt(name, timeout=5) -> bytes:
    """A TXT record as the server answers it (dkimpy's dnsfunc)."""
    host, _, port = SERVER.partition(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [host], int(port or 53)
    name = name.decode() if isinstance(name, bytes) else name
    return b"".join(resolver.resolve(name, "TXT", lifetime=timeout)[0].strings)


async def verified_domain(api, headers: dict[str, str]) -> str:
    """A new sending domain of the account behind `headers`, added, published and verified through
    the API (`api`: an httpx.AsyncClient on the gateway); remove it with `remove_domain`."""
    domain = f"d{uuid.uuid4().hex[:10]}.mailstream.test"
    added = await api.post("/mailstream/v1/sending-domains", headers=headers, json={"domain": domain})
    assert added.status_code == 201, added.text
    await asyncio.to_thread(publish, added.json())
    verified = await api.post(f"/mailstream/v1/sending-domains/{domain}/verify", headers=headers)
    assert verified.json().get("verified"), verified.text
    return domain


async def remove_domain(api, headers: dict[str, str], domain: str) -> None:
    await asyncio.to_thread(withdraw, domain)
    await api.delete(f"/mailstream/v1/sending-domains/{domain}", headers=headers)


DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
_PROBE = "ready.probe.test"


async def start_private(records: list[str]) -> tuple[asyncio.subprocess.Process, str]:
    """A private dnsmasq on a free port answering *.test only from `records` (dnsmasq options; every
    other name under .test is NXDOMAIN), once it answers: (its process, "127.0.0.1:port")."""
    port = free_port(udp=True)
    proc = await asyncio.create_subprocess_exec(
        DNSMASQ,
        "--no-daemon",
        "--no-resolv",
        "--no-hosts",
        "--conf-file=/dev/null",
        "--pid-file=",
        "--bind-interfaces",
        "--listen-address=127.0.0.1",
        f"--port={port}",
        "--local=/test/",
        f"--txt-record={_PROBE},ok",
        *records,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = ["127.0.0.1"], port
    for _ in range(50):
        try:
            await resolver.resolve(_PROBE, "TXT", lifetime=1)
            return proc, f"127.0.0.1:{port}"
        except dns.exception.DNSException:
            if proc.returncode is not None:
                raise AssertionError(f"dnsmasq exited: {(await proc.stderr.read()).decode()}") from None
            await asyncio.sleep(0.1)
    proc.terminate()
    raise AssertionError("dnsmasq did not answer within 5 s")
