"""Our SMTP client against Postfix's smtp-sink (Debian `postfix`), the standard throughput peer: a
private smtp-sink per test on a port of its own, with its dump (-d) to see what it received and
its fault options (-f, -r, -Q, -q) for the failure paths."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from mailstream.sender.adapters.smtp import Route, SmtpTransport
from mailstream.sender.outcomes import Bounced, Deferred, Delivered
from testkit import free_port

pytestmark = pytest.mark.integration

SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"


@pytest.fixture
async def smtp_sink(tmp_path):
    """start(*options, dump=False) -> (port, dump folder) of a private smtp-sink, stopped after the test."""
    if not os.access(SMTP_SINK, os.X_OK):
        raise AssertionError(f"Postfix's smtp-sink is needed for these tests and is not at {SMTP_SINK}")
    procs: list[subprocess.Popen] = []
    folders: list[Path] = []

    async def start(*options: str, dump: bool = False) -> tuple[int, Path]:
        # smtp-sink binds with SO_REUSEPORT, so it would share a port another listener holds:
        # free_port() checks none does (it binds without SO_REUSEPORT)
        port, log = free_port(), tmp_path / f"smtp-sink-{len(procs)}.log"
        # Run by root, smtp-sink must drop to `nobody` (-u), who cannot reach pytest's private tmp_path.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        folder = Path(tempfile.mkdtemp(prefix="smtp-sink-dump-"))
        os.chmod(folder, 0o777)
        folders.append(folder)
        dump_option = ["-d", f"{folder}/%M."] if dump else []
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, stopped at teardown
            [SMTP_SINK, *user, *dump_option, *options, f"127.0.0.1:{port}", "64"],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        procs.append(proc)
        for _ in range(100):
            if proc.poll() is not None:
                raise AssertionError(f"smtp-sink exited: {log.read_text()}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return port, folder
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError(f"smtp-sink did not listen on port {port}")

    yield start
    for proc in procs:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def message(n: int, rng: random.Random) -> bytes:
    """~25 KB of text whose lines often start with a dot, some of them 8-bit."""
    words = ["receipt", "order", ".", "..", ".item", "Grüße", "total:", "  spaced", "end."]
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) for _ in range(900)]
    body = "\r\n".join(line.lstrip(" ") if rng.random() < 0.5 else line for line in lines) + "\r\n"
    head = f"From: orders@shop.example\r\nTo: jane@example.com\r\nSubject: receipt {n}\r\n"
    return (head + 'Content-Type: text/plain; charset="utf-8"\r\n\r\n' + body).encode()


def dumped(folder: Path) -> list[tuple[dict[str, list[str]], bytes]]:
    """smtp-sink's dump files: (its X- headers, the message as received with CRLF line ends)."""
    found = []
    for file in sorted(folder.iterdir()):
        lines = file.read_bytes().split(b"\n")
        start = next(i for i, line in enumerate(lines) if line.startswith(b"Received:"))
        start += 1 + sum(1 for line in lines[start + 1 : start + 3] if line.startswith(b"\t"))
        meta: dict[str, list[str]] = {}
        for line in lines[: start - 3]:
            name, _, value = line.decode().partition(": ")
            meta.setdefault(name, []).append(value)
        found.append((meta, b"\r\n".join(lines[start:-2]) + b"\r\n"))  # the dump ends with an empty line
    return found


async def test_delivers_over_persistent_sessions_and_smtp_sink_receives_every_byte(smtp_sink):
    port, folder = await smtp_sink(dump=True)
    rng = random.Random(8058)
    sent = {f"receipt {n}": message(n, rng) for n in range(40)}
    transport = SmtpTransport(helo_name="test.local", timeout=10)

    async def worker(source_ip: str, names: list[str]) -> None:
        for name in names:
            outcome = await transport.deliver(
                Route("127.0.0.1", port, source_ip), "orders@shop.example", ["jane@example.com"], sent[name]
            )
            assert isinstance(outcome, Delivered) and outcome.code == 250, outcome

    names = list(sent)
    await asyncio.gather(*(worker(("127.0.0.2", "127.0.0.3")[i % 2], names[i::4]) for i in range(4)))
    await transport.close()
    assert transport.connections_opened == 4  # two per source IP, each reused for ten messages
    received = dumped(folder)
    assert len(received) == len(sent)
    for meta, data in received:
        parsed = email.message_from_bytes(data, policy=email.policy.SMTP)
        assert data == sent[parsed["Subject"]]  # dots, 8-bit text and spacing intact
        assert meta["X-Mail-Args"] == ["<orders@shop.example> BODY=8BITMIME"]
        assert meta["X-Rcpt-Args"] == ["<jane@example.com>"]
        assert meta["X-Client-Addr"][0] in ("127.0.0.2", "127.0.0.3")
    assert sorted(m["X-Client-Addr"][0] for m, _ in received) == ["127.0.0.2"] * 20 + ["127.0.0.3"] * 20


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (("-f", "RCPT"), Bounced(500, "5.3.0 Error: command failed", "127.0.0.1")),  # hard reject, no PIPELINING
        (("-r", "MAIL"), Deferred(450, "4.3.0 Error: command failed", "127.0.0.1")),
        (("-r", "DATA"), Deferred(450, "4.3.0 Error: command failed", "127.0.0.1")),
        (("-f", "."), Bounced(500, "5.3.0 Error: command failed", "127.0.0.1")),
        (("-Q", "RCPT"), Deferred(421, "4.0.0 Server closing connection", "127.0.0.1")),  # then disconnects
    ],
)
async def test_smtp_sink_refusals_map_to_outcomes_and_the_next_message_goes(smtp_sink, options, expected):
    port, _ = await smtp_sink(*options)
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    first = await transport.deliver(route, "a@shop.example", ["b@example.com"], message(0, random.Random(1)))
    second = await transport.deliver(route, "a@shop.example", ["b@example.com"], message(1, random.Random(2)))
    await transport.close()
    assert first == expected and second == expected  # the session (or a new one after 421) carries on


@pytest.mark.parametrize("command", ["DATA", "."])
async def test_a_disconnect_without_reply_defers_without_a_code(smtp_sink, command):
    port, _ = await smtp_sink("-q", command)
    transport = SmtpTransport(helo_name="test.local", timeout=5)
    route = Route("127.0.0.1", port, "127.0.0.2")
    outcome = await transport.deliver(route, "a@shop.example", ["b@example.com"], message(0, random.Random(1)))
    await transport.close()
    assert isinstance(outcome, Deferred) and outcome.code is None
    assert "closed" in outcome.reply or "lost" in outcome.reply
