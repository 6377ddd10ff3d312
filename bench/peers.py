"""The peers, measured in the same run on the same sink, with messages of the size mailstream
delivered: smtp-source straight into smtp-sink (the machine's SMTP ceiling), Postfix relaying
smtp-source's messages with OpenDKIM signing them, a naive synchronous smtplib loop, and the
sender's own benchmark (one sender process against Postfix into smtp-sink)."""

from __future__ import annotations

import os
import re
import smtplib
import subprocess
import sys
import time
from pathlib import Path

from measure import Monitor, cpu_by_tree, cpu_seconds, cpu_used, pid_from_file, process_trees
from sink import SINK_PORT, count_files, last_arrival, messages, peers, sink_pid, start_sink, stop_sink, wait_for_files
from workload import receipt_html

ROOT = Path(__file__).resolve().parents[1]
POSTFIX_MASTER_PID = Path("/var/spool/postfix/pid/master.pid")
OPENDKIM_PID = Path("/var/spool/postfix/opendkim/opendkim.pid")
SENDER_BENCH = ROOT / "services/sender/bench/throughput.py"


def smtp_source(n: int, payload: int, target: str) -> list[str]:
    """Postfix's load generator: n messages with `payload` bytes of body, over 20 parallel sessions."""
    return [
        "smtp-source",
        "-l",
        str(payload),
        "-m",
        str(n),
        "-s",
        "20",
        "-f",
        "a@peer.example",
        "-t",
        "b@example.com",
        target,
    ]


def run_measured(cmd: list[str]) -> float:
    """Runs a command to its end; returns its CPU seconds (and its waited-for children's)."""
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited with {process.returncode}: {process.stderr.read().decode()}")
    return usage.ru_utime + usage.ru_stime


def per_message_ms(cpu: dict[str, float], n: int) -> dict[str, float]:
    return {name: seconds / max(1, n) * 1000 for name, seconds in cpu.items()}


def peer_ceiling(n: int, target_bytes: float) -> dict:
    payload = calibrate(target_bytes, f"127.0.0.1:{SINK_PORT}", signed=False)
    folder = start_sink("ceiling")
    try:
        roots = {"sink": sink_pid()}
        before = cpu_by_tree(roots)
        t0 = time.time()
        source_cpu = run_measured(smtp_source(n, payload, f"127.0.0.1:{SINK_PORT}"))
        wait_for_files(folder, n, "ceiling", 60)
        done = last_arrival(folder)
        cpu = {**cpu_used(before, cpu_by_tree(roots)), "load generator": source_cpu}
        got = messages(folder, limit=200)
    finally:
        stop_sink(folder)
    return {
        "path": "smtp-source -> smtp-sink (SMTP ceiling)",
        "messages": n,
        "delivered_per_s": n / (done - t0),
        "cpu_ms_by_process": per_message_ms(cpu, n),
        "mime_bytes": got.mime_bytes,
        "payload": payload,
    }


def postfix_processes() -> dict[str, int | None]:
    return {"postfix": pid_from_file(POSTFIX_MASTER_PID), "opendkim": pid_from_file(OPENDKIM_PID), "sink": sink_pid()}


def calibrate(target_bytes: float, address: str, *, signed: bool) -> int:
    """smtp-source's -l for messages of `target_bytes` at the sink: one message shows what
    smtp-source and the path add to the payload (headers, Received, DKIM-Signature). With `signed`,
    fails unless that message carries a DKIM-Signature."""
    guess = round(target_bytes)
    folder = start_sink("calibration")
    try:
        subprocess.run(smtp_source(1, guess, address), check=True, capture_output=True)
        wait_for_files(folder, 1, "calibration", 20)
        got = messages(folder)
    finally:
        stop_sink(folder)
    if signed and not got.all_signed:
        raise SystemExit(f"Postfix peer: the message at the sink has no DKIM-Signature (OpenDKIM): {got}")
    return max(1, round(guess + target_bytes - got.mime_bytes))


def peer_postfix(n: int, target_bytes: float) -> dict:
    """smtp-source -> Postfix (queue on disk, OpenDKIM signing) -> smtp-sink, messages of the size
    mailstream delivered."""
    peers("postfix-start", str(SINK_PORT), "dkim")
    try:
        payload = calibrate(target_bytes, "127.0.0.1:25", signed=True)
        folder = start_sink("postfix")
        try:
            with Monitor(postfix_processes()) as monitor:
                before = monitor.cpu()
                t0 = time.time()
                source_cpu = run_measured(smtp_source(n, payload, "127.0.0.1:25"))
                accepted = time.time()
                wait_for_files(folder, n, "postfix", 60)
                done = last_arrival(folder)
                cpu = {**cpu_used(before, monitor.cpu()), "load generator": source_cpu}
            delivered = count_files(folder)
            got = messages(folder)
        finally:
            stop_sink(folder)
    finally:
        peers("postfix-stop")
    if not got.all_signed:
        raise SystemExit(f"Postfix peer: {got.count - got.signed} of {got.count} messages without DKIM-Signature")
    return {
        "path": "smtp-source -> Postfix 3.7 (queue on disk) + OpenDKIM -> smtp-sink",
        "messages": n,
        "delivered": delivered,
        "payload": payload,
        "accepted_per_s": n / (accepted - t0),
        "delivered_per_s": delivered / (done - t0),
        "cpu_ms_by_process": per_message_ms(cpu, delivered),
        "memory": dict(monitor.peak),
        "mime_bytes": got.mime_bytes,
        "signed": got.signed,
    }


def peer_naive(n: int, target_bytes: float) -> dict:
    """A synchronous smtplib loop in this process, unsigned: what the simplest client manages."""
    folder = start_sink("naive")
    try:
        body = naive_message(target_bytes)
        roots = {"sink": sink_pid()}
        before = cpu_by_tree(roots)
        t0, cpu0 = time.time(), time.thread_time()
        with smtplib.SMTP("127.0.0.1", SINK_PORT) as smtp:
            for _ in range(n):
                smtp.sendmail("a@peer.example", ["b@example.com"], body)
        load_cpu = time.thread_time() - cpu0
        wait_for_files(folder, n, "naive", 60)
        done = last_arrival(folder)
        cpu = {**cpu_used(before, cpu_by_tree(roots)), "load generator": load_cpu}
        got = messages(folder, limit=200)
    finally:
        stop_sink(folder)
    return {
        "path": "naive synchronous smtplib loop -> smtp-sink",
        "messages": n,
        "delivered_per_s": n / (done - t0),
        "cpu_ms_by_process": per_message_ms(cpu, n),
        "mime_bytes": got.mime_bytes,
    }


def naive_message(target_bytes: float) -> bytes:
    """The receipt's HTML as the body, in 76-character lines, of about `target_bytes` on the wire."""
    head = "Subject: receipt\r\nFrom: a@peer.example\r\nTo: b@example.com\r\n\r\n"
    html = receipt_html() * 3
    lines, size = [], len(head)
    for start in range(0, len(html), 76):
        if size + 78 > target_bytes:
            break
        lines.append(html[start : start + 76])
        size += 78
    return (head + "\r\n".join(lines) + "\r\n").encode()


SENDER_ROW = re.compile(r"^\| (?P<path>[^|]+?) \| (?P<count>\d+) \|.*\| (?P<rate>[\d.]+) \|$")


def sender_benchmark(n: int) -> dict:
    """services/sender/bench/throughput.py --smtp-sink: one sender process, then Postfix, into
    smtp-sink, 20 KB messages. Its rates as it prints them; the CPU of its sender process (a child
    of the script) sampled here every 0.2 s, start-up included."""
    cmd = [sys.executable, str(SENDER_BENCH), "--messages", str(n), "--connections", "20", "--smtp-sink"]
    cmd += ["--timeout", "120"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    sender_cpu: dict[int, float] = {}
    while process.poll() is None:
        sample_children_cpu(process.pid, b"mailstream.sender", sender_cpu)
        time.sleep(0.2)
    output, errors = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{SENDER_BENCH.name} exited with {process.returncode}:\n{output}{errors}")
    rows = [m.groupdict() for line in output.splitlines() if (m := SENDER_ROW.match(line.strip()))]
    sender = next((r for r in rows if r["path"].startswith("one sender process")), None)
    postfix = next((r for r in rows if "Postfix" in r["path"] and "sender" not in r["path"]), None)
    if not sender or not postfix:
        raise RuntimeError(f"unexpected output of {SENDER_BENCH.name}:\n{output}")
    return {
        "command": " ".join([".mailstream/venv/bin/python", str(SENDER_BENCH.relative_to(ROOT)), *cmd[2:]]),
        "messages": int(sender["count"]),
        "sender_per_s": float(sender["rate"]),
        "postfix_per_s": float(postfix["rate"]),
        "sender_cpu_ms": sum(sender_cpu.values()) / max(1, int(sender["count"])) * 1000,
    }


def sample_children_cpu(parent: int, marker: bytes, seen: dict[int, float]) -> None:
    """The CPU seconds so far of each descendant of `parent` whose command line holds `marker`."""
    for pid in process_trees({"parent": parent})["parent"][1:]:
        try:
            if marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                seen[pid] = cpu_seconds([pid])
        except OSError:
            pass
