"""Postfix's smtp-sink, where every path ends: it dumps each message to a file in /dev/shm, and a
file's mtime is the message's arrival time."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "bench/peers.sh"
SINK_PORT = 2526
DUMPS = Path("/dev/shm/mailstream-bench")
HEAD_BYTES = 4096  # smtp-sink's own lines, then the message's headers: DKIM-Signature is at the top


def peers(*args: str) -> str:
    return subprocess.run([str(PEERS), *args], check=True, capture_output=True, text=True).stdout


def start_sink(name: str) -> Path:
    folder = DUMPS / name
    shutil.rmtree(folder, ignore_errors=True)
    peers("sink-start", str(folder), str(SINK_PORT))
    return folder


def sink_pid() -> int:
    return int(peers("sink-pid", str(SINK_PORT)))


def stop_sink(folder: Path) -> None:
    """Stops smtp-sink and drops its dumps (the 100,000-message run writes 2 GB into /dev/shm)."""
    peers("sink-stop", str(SINK_PORT))
    shutil.rmtree(folder, ignore_errors=True)


def dump_files(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return [e.path for e in os.scandir(folder) if e.is_file()]


def count_files(folder: Path) -> int:
    return len(dump_files(folder))


def wait_for_files(folder: Path, expected: int, label: str, stalled_after: float) -> float:
    """Waits until `expected` messages arrived, or none arrived for `stalled_after` seconds (a
    100,000-message burst is accepted faster than delivered: the backlog drains for minutes)."""
    seen, last_arrival, last_print = 0, time.monotonic(), time.monotonic()
    while True:
        scan_started = time.monotonic()
        if (n := count_files(folder)) >= expected:
            break
        now = time.monotonic()
        if n > seen:
            seen, last_arrival = n, now
        elif now - last_arrival > stalled_after:
            print(f"  {label}: only {n}/{expected} arrived, none in the last {stalled_after:.0f}s", flush=True)
            break
        if now - last_print >= 5:
            print(f"  {label}: delivered {n}/{expected}", flush=True)
            last_print = now
        # Listing 100,000 dumps takes tens of ms: keep this process's share of the CPU small.
        time.sleep(max(0.2, 10 * (now - scan_started)))
    return time.time()


def last_arrival(folder: Path) -> float:
    """The mtime of the newest dump: when the last message arrived (the waits poll coarsely)."""
    return max((os.stat(path).st_mtime for path in dump_files(folder)), default=0.0)


def split_sink_lines(data: bytes) -> tuple[bytes, bytes]:
    """(smtp-sink's own lines, the message as delivered): smtp-sink writes X-Client-Addr ...
    X-Rcpt-Args lines and its own Received header before the message."""
    lines = data.split(b"\n")
    i = 0
    while i < len(lines) and lines[i].startswith(b"X-"):
        i += 1
    if i < len(lines) and lines[i].startswith(b"Received:") and b"smtp-sink" in b"".join(lines[i : i + 3]):
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
    return b"\n".join(lines[:i]), b"\n".join(lines[i:])


def recipient(sink_lines: bytes) -> str | None:
    for line in sink_lines.split(b"\n"):
        if line.startswith(b"X-Rcpt-Args: <"):
            return line[14:].split(b">")[0].decode()
    return None


def arrivals(folder: Path) -> dict[str, float]:
    """recipient -> arrival time, from the dump files."""
    found = {}
    for path in dump_files(folder):
        with open(path, "rb") as f:
            head = f.read(1024)
        if to := recipient(head):
            found[to] = os.stat(path).st_mtime
    return found


@dataclass(frozen=True)
class Messages:
    count: int
    mime_bytes: float  # average size of a message as delivered, CRLF line ends as on the wire
    signed: int  # messages with a DKIM-Signature header

    @property
    def all_signed(self) -> bool:
        return self.count > 0 and self.signed == self.count


def is_signed(message: bytes) -> bool:
    headers = message.split(b"\n\n", 1)[0]
    return headers.startswith(b"DKIM-Signature:") or b"\nDKIM-Signature:" in headers


def wire_bytes(message: bytes) -> int:
    # smtp-sink stores lines with LF; on the wire each line ended with CRLF.
    return len(message) + message.count(b"\n")


def messages(folder: Path, *, limit: int | None = None, recipient_prefix: str = "") -> Messages:
    """Sizes and DKIM signatures of the messages dumped in `folder` (all, or the first `limit`),
    of those whose recipient starts with `recipient_prefix`: the stack's sender relays every
    message to the bench sink, other people's test mail too."""
    count = total = signed = 0
    for path in dump_files(folder)[:limit]:
        with open(path, "rb") as f:
            sink_lines, message = split_sink_lines(f.read())
        if not (recipient(sink_lines) or "").startswith(recipient_prefix):
            continue
        count += 1
        total += wire_bytes(message)
        signed += is_signed(message[:HEAD_BYTES])
    return Messages(count, total / count if count else 0.0, signed)
