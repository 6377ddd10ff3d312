"""Process CPU per delivered message: aiosmtplib (the sender's transport until now) against our own
SMTP client, into Postfix's smtp-sink over persistent connections.

    .mailstream/venv/bin/python services/sender/bench/smtp_client_cost.py --messages 4000 --connections 20

Each run starts a private smtp-sink on a free port (it offers PIPELINING, SIZE, 8BITMIME), opens
the connections first (bound to 127.0.0.2 and 127.0.0.3, alternately), then measures the process
CPU (time.process_time) of sending the messages, and prints µs per message and messages/s. The
smtp-sink process's own CPU is not counted. Paths measured, for a 25 KB and a 63 KB message:

- aiosmtplib: `SMTP.sendmail()` of aiosmtplib 5.1.3, with the CRLF fast path the old transport
  patched in (its cost without that patch is higher);
- client: `SmtpClient.send()` of adapters/smtp_client.py;
- transport: `SmtpTransport.deliver()` of adapters/smtp.py, the call the pipeline makes (client
  plus the connection pool);
- transport, signed: the same with the message as the DKIM signer hands it on (a CrlfMessage, whose
  line endings the client does not check again).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import shutil
import socket
import subprocess
import time

import aiosmtplib
import aiosmtplib.protocol
import aiosmtplib.smtp

from mailstream.sender.adapters.smtp import Route, SmtpTransport
from mailstream.sender.adapters.smtp_client import SmtpClient
from mailstream.sender.adapters.smtp_wire import CrlfMessage

SOURCES = ("127.0.0.2", "127.0.0.3")
FROM, TO = "orders@shop.example", "jane@example.com"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receipt(size: int) -> bytes:
    """A message shaped like the renderer's: headers, then text and HTML parts in base64 lines."""
    part = size // 2 * 3 // 4
    text = base64.encodebytes(os.urandom(part)).replace(b"\n", b"\r\n")
    html = base64.encodebytes(os.urandom(part)).replace(b"\n", b"\r\n")
    return (
        b"Message-ID: <bench@shop.example>\r\nDate: Sat, 28 Nov 2026 12:00:00 +0000\r\n"
        b"From: Shop <orders@shop.example>\r\nTo: jane@example.com\r\nSubject: Your receipt\r\n"
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="b"\r\n\r\n'
        b'--b\r\nContent-Type: text/plain; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + text
        + b'\r\n--b\r\nContent-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + html
        + b"\r\n--b--\r\n"
    )


def start_sink(port: int) -> subprocess.Popen:
    binary = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"
    user = ["-u", "nobody"] if os.geteuid() == 0 else []  # smtp-sink refuses to run as root without -u
    return subprocess.Popen([binary, *user, f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL)


async def wait_for_port(port: int) -> None:
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.05)
    raise SystemExit(f"smtp-sink did not listen on {port}")


def patch_aiosmtplib_line_endings() -> None:
    """The old adapters/smtp.py replaced aiosmtplib's line-ending regex with this fast path."""
    regex = aiosmtplib.protocol.normalize_message_line_endings

    def fast(message: bytes) -> bytes:
        crlf = message.count(b"\r\n")
        if message.count(b"\n") == crlf and message.count(b"\r") == crlf:
            return message if message.endswith(b"\r\n") else message + b"\r\n"
        return regex(message)

    aiosmtplib.protocol.normalize_message_line_endings = fast
    aiosmtplib.smtp.normalize_message_line_endings = fast


async def run(path: str, port: int, mime: bytes, messages: int, connections: int) -> tuple[float, float, float]:
    """(CPU µs per message, of which in the kernel, messages per wall-clock second) of `messages` sends."""
    per_worker = messages // connections
    if path == "aiosmtplib":
        sessions = [
            aiosmtplib.SMTP(hostname="127.0.0.1", port=port, source_address=(SOURCES[i % 2], 0), start_tls=False)
            for i in range(connections)
        ]
        await asyncio.gather(*(s.connect() for s in sessions))
        senders = [lambda s=s: s.sendmail(FROM, [TO], mime) for s in sessions]
        quits = [s.quit for s in sessions]
    elif path == "client":
        clients = await asyncio.gather(
            *(
                SmtpClient.connect(
                    "127.0.0.1",
                    port,
                    source_ip=SOURCES[i % 2],
                    helo_name=b"bench.local",
                    command_timeout=30,
                    tls="disabled",
                )
                for i in range(connections)
            )
        )
        senders = [lambda c=c: c.send(FROM, [TO], mime) for c in clients]
        quits = [c.quit for c in clients]
    else:
        if path == "transport, signed":
            mime = CrlfMessage(mime)
        transport = SmtpTransport(helo_name="bench.local", timeout=30)
        routes = [Route("127.0.0.1", port, SOURCES[i % 2], tls="disabled") for i in range(connections)]
        deliver = [lambda r=r: transport.deliver(r, FROM, [TO], mime, max_deliveries=10**9) for r in routes]
        await asyncio.gather(*(d() for d in deliver))  # opens the connections, outside the measurement
        senders = deliver
        quits = [transport.close]

    async def worker(send) -> None:
        for _ in range(per_worker):
            await send()

    before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await asyncio.gather(*(worker(send) for send in senders))
    after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
    await asyncio.gather(*(quit() for quit in quits))
    sent = per_worker * connections
    user, system = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return (user + system) / sent * 1e6, system / sent * 1e6, sent / wall


async def main(args: argparse.Namespace) -> None:
    patch_aiosmtplib_line_endings()
    port = free_port()
    sink = start_sink(port)
    try:
        await wait_for_port(port)
        print(f"| message | path | CPU µs/message (best of {args.repeat}) | of which kernel | messages/s |")
        print("|---|---|---|---|---|")
        for size in (25_000, 63_000):
            mime = receipt(size)
            for path in ("aiosmtplib", "client", "transport", "transport, signed"):
                results = [await run(path, port, mime, args.messages, args.connections) for _ in range(args.repeat)]
                cpu, system, rate = min(results)
                print(f"| {len(mime) / 1000:.0f} KB | {path} | {cpu:.0f} | {system:.0f} | {rate:,.0f} |")
    finally:
        sink.terminate()
        sink.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
