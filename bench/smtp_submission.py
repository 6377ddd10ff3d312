"""SMTP submission throughput: messages/s accepted (250 after Kafka's acks) by ONE gateway process
with N concurrent SMTP clients (each one connection: STARTTLS, AUTH PLAIN, then messages back to back).

Peer, measured in the same run with the same clients: a bare aiosmtpd server with the same TLS,
AUTH and SIZE settings whose DATA hook answers 250 at once (no database, no Kafka). The gap between
the two is the cost of what the gateway does per message: the token re-check, the From-domain
check, a transaction with one send_requests row per recipient, and the Kafka round trip.

    .mailstream/venv/bin/python bench/smtp_submission.py --clients 10 --messages 2000

By default a private gateway process is started on spare ports (and stopped at the end) against
the local stack's Kafka and PostgreSQL; --smtp/--http point at a running one instead. The accepted
messages flow on through the renderer and sender to the development sink like any others.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

import aiosmtplib
import httpx

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DATABASE_URL = os.environ.get("MAILSTREAM_DATABASE_URL", "postgresql://mailstream:mailstream@127.0.0.1:5432/mailstream")
CLIENT_TLS = ssl.create_default_context()
CLIENT_TLS.check_hostname = False
CLIENT_TLS.verify_mode = ssl.CERT_NONE


# --- the peer: bare aiosmtpd, same TLS/AUTH/SIZE, 250 at once ------------------------------------------


def run_peer(port: int, size: int = 786432) -> None:
    from aiosmtpd.smtp import SMTP, AuthResult

    from mailstream.gateway.smtp.server import self_signed_pem

    cert, key = self_signed_pem("peer.local")
    folder = Path(f"/tmp/smtp-peer-{os.getpid()}")
    folder.mkdir(exist_ok=True)
    (folder / "c.pem").write_bytes(cert)
    (folder / "k.pem").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "c.pem", folder / "k.pem")

    class Accept:
        async def handle_DATA(self, server, session, envelope):
            return f"250 2.0.0 OK queued as {uuid.uuid4()}"

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(
                Accept(),
                data_size_limit=size,
                hostname="peer.local",
                tls_context=context,
                require_starttls=True,
                auth_required=True,
                authenticator=lambda *a: AuthResult(success=True),
            ),
            "127.0.0.1",
            port,
        )
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --- clients ----------------------------------------------------------------------------------------------


def message(sender: str, to: str, size: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Bench <{sender}>"
    msg["To"] = to
    msg["Subject"] = "Your receipt"
    body = "<p>Thank you for your order. <a href='https://shop.example/o/1'>Track it</a></p>\n"
    msg.set_content(body * max(1, size // len(body)), subtype="html")
    return msg.as_bytes(policy=SMTP_POLICY)


async def client(port: int, user: str, password: str, sender: str, count: int, size: int, lat: list[float]) -> int:
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=True, tls_context=CLIENT_TLS, timeout=60)
    await smtp.connect()
    await smtp.login(user, password)
    accepted = 0
    data = message(sender, "bench@bench.example", size)  # built once: the client should cost little CPU
    for _ in range(count):
        to = f"bench-{uuid.uuid4().hex[:12]}@bench.example"
        started = time.perf_counter()
        errors, reply = await smtp.sendmail(sender, [to], data)
        lat.append(time.perf_counter() - started)
        accepted += not errors and "queued as" in reply
    await smtp.quit()
    return accepted


async def measure(port: int, user: str, password: str, sender: str, clients: int, total: int, size: int) -> dict:
    lat: list[float] = []
    per = [total // clients + (i < total % clients) for i in range(clients)]
    started = time.perf_counter()
    accepted = await asyncio.gather(*(client(port, user, password, sender, n, size, lat) for n in per))
    seconds = time.perf_counter() - started
    lat.sort()
    return {
        "messages": sum(accepted),
        "seconds": seconds,
        "rate": sum(accepted) / seconds,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[int(len(lat) * 0.99) - 1] * 1000,
    }


# --- setup: account, token (HTTP API), sending domain -------------------------------------------------------


def new_account_key() -> str:
    return subprocess.run(
        [str(Path(PY).with_name("mailstream")), "accounts", "create", f"bench-{uuid.uuid4().hex[:6]}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


async def setup(http: str, key: str) -> tuple[str, str, str]:
    async with httpx.AsyncClient(base_url=http, timeout=10) as api:
        token = (
            await api.post(
                "/marketing/v3/transactional/smtp-tokens",
                headers={"Authorization": f"Bearer {key}"},
                json={"createContact": False, "campaignName": "bench"},
            )
        ).json()
        domain = f"bench-{uuid.uuid4().hex[:8]}.example"  # a sending domain of the account (not verified)
        added = await api.post(
            "/mailstream/v1/sending-domains", headers={"Authorization": f"Bearer {key}"}, json={"domain": domain}
        )
        added.raise_for_status()
    return token["id"], token["password"], f"orders@{domain}"


async def wait_listening(port: int, within: float = 20) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process (Linux /proc), 0 when unknown."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(args: argparse.Namespace, http: str, smtp_port: int, key: str, pids: dict[str, int | None]) -> None:
    await wait_listening(smtp_port)
    await wait_listening(args.peer_port)
    user, password, sender = await setup(http, key)
    await measure(smtp_port, user, password, sender, args.clients, args.clients * 5, args.size)  # warm-up
    rows = []
    for name, port, pid in (
        ("gateway (PostgreSQL + Kafka acks)", smtp_port, pids["gateway"]),
        ("peer: bare aiosmtpd, 250 at once", args.peer_port, pids["peer"]),
    ):
        cpu = cpu_seconds(pid)
        result = await measure(port, user, password, sender, args.clients, args.messages, args.size)
        result["cpu_ms"] = (cpu_seconds(pid) - cpu) * 1000 / max(1, result["messages"]) if pid else float("nan")
        rows.append((name, result))
    print(f"\nSMTP submission, {args.clients} concurrent clients, {args.messages} messages of ~{args.size} B, "
          "1 recipient each, one connection per client\n")  # fmt: skip
    print("| server | accepted | seconds | messages/s | p50 ms | p99 ms | server CPU ms/message |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        print(
            f"| {name} | {r['messages']} | {r['seconds']:.2f} | {r['rate']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} "
            f"| {r['cpu_ms']:.2f} |"
        )
    print(f"\nload average after the run: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


def main(args: argparse.Namespace) -> None:
    procs = []
    try:
        if args.smtp is None:
            env = {
                **os.environ,
                "MAILSTREAM_HTTP_PORT": str(args.private_http),
                "MAILSTREAM_SMTP_PORT": str(args.private_smtp),
                "MAILSTREAM_SCHEDULER_ENABLED": "false",
                "MAILSTREAM_LOG_LEVEL": "WARNING",
            }
            procs.append(subprocess.Popen([PY, "-m", "mailstream.gateway"], env=env))
            http, smtp_port = f"http://127.0.0.1:{args.private_http}", args.private_smtp
        else:
            http, smtp_port = args.http, int(args.smtp.rpartition(":")[2])
        gateway_pid = procs[0].pid if procs else None
        procs.append(subprocess.Popen([PY, __file__, "--peer-server", str(args.peer_port)]))
        pids = {"gateway": gateway_pid, "peer": procs[-1].pid}
        asyncio.run(bench(args, http, smtp_port, new_account_key(), pids))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--messages", type=int, default=2000, help="total messages per server")
    parser.add_argument("--size", type=int, default=2000, help="approximate message size in bytes")
    parser.add_argument("--smtp", help="host:port of a running gateway's SMTP server (default: start a private one)")
    parser.add_argument("--http", default="http://127.0.0.1:8080", help="that gateway's HTTP API")
    parser.add_argument("--private-http", type=int, default=18180)
    parser.add_argument("--private-smtp", type=int, default=12588)
    parser.add_argument("--peer-port", type=int, default=12589)
    parser.add_argument("--peer-server", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.peer_server:
        run_peer(arguments.peer_server)
    else:
        main(arguments)
