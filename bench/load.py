"""The load generator: wrk (C, LuaJIT) with bench/wrk/single_send.lua, so that generating the load
costs little next to what it measures (aiohttp cost ~0.8-1.1 ms of CPU per request here)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from workload import GATEWAY, BenchAccount, line_items_json

SCRIPT = Path(__file__).resolve().parent / "wrk/single_send.lua"
DONE_MARK = "wrk-thread-done"
SUMMARY_MARK = "wrk-summary "
# Latencies above wrk's --timeout are dropped from its histogram (counted as timeouts instead).
TIMEOUT = "20s"


@dataclass
class Load:
    """What wrk reported for one run, and its own CPU time."""

    tag: str
    requested: int
    issued: int = 0  # requests written, retries included
    retries: int = 0  # requests written again after wrk reconnected
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latency_us: dict[str, float] = field(default_factory=dict)
    lag_ms: dict[str, float] = field(default_factory=dict)
    first_ms: float = 0.0
    last_ms: float = 0.0
    cpu_s: float = 0.0

    @property
    def recipient_prefix(self) -> str:
        return f"bench-{self.tag}-"

    @property
    def error_count(self) -> int:
        """As wrk's summary counts them: socket errors (connect, read, write, timeout) and non-2xx."""
        return sum(self.errors.values())

    @property
    def accepted_per_s(self) -> float:
        seconds = (self.last_ms - self.first_ms) / 1000
        return self.ok / seconds if seconds > 0 else float("nan")

    def accept_ms(self, percentile: str) -> float:
        return self.latency_us.get(percentile, float("nan")) / 1000


def wrk_command(count: int, rate: float | None, connections: int, tag: str, account: BenchAccount) -> list[str]:
    # One thread: the gateway takes a few hundred requests/s, far below what one wrk thread
    # drives, and one thread keeps the count and the rate's schedule in one Lua state.
    longest = 60 + 3 * count / (rate or 100)  # a bound only: the script stops wrk when it is done
    return [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{longest:.0f}s",
        "--timeout",
        TIMEOUT,
        "-s",
        str(SCRIPT),
        GATEWAY,
        "--",
        tag,
        str(count),
        str(rate or 0),
        str(account.email_id),
        line_items_json(),
    ]


def interrupt_when_done(process: subprocess.Popen, lines: list[str]) -> None:
    """Reads wrk's output; once its thread is done, interrupts the main thread's sleep."""
    for line in process.stdout:
        lines.append(line)
        if line.startswith(DONE_MARK):
            process.send_signal(signal.SIGINT)


def parse(load: Load, lines: list[str]) -> None:
    summary = next((line for line in lines if line.startswith(SUMMARY_MARK)), None)
    if summary is None:
        raise RuntimeError("wrk printed no summary:\n" + "".join(lines))
    data = json.loads(summary[len(SUMMARY_MARK) :])
    load.issued, load.retries, load.ok = data["issued"], data["retries"], data["ok"]
    load.errors = {kind: n for kind, n in data["errors"].items() if n}
    load.latency_us, load.lag_ms = data["latency_us"], data["lag_ms"]
    load.first_ms, load.last_ms = data["first_ms"], data["last_ms"]


def run_wrk(account: BenchAccount, count: int, *, rate: float | None, connections: int, progress=None) -> Load:
    """`count` single-sends, as fast as `connections` allow or at `rate` per second."""
    load = Load(tag=uuid.uuid4().hex[:8], requested=count)
    env = {**os.environ, "BENCH_API_KEY": account.api_key}
    process = subprocess.Popen(
        wrk_command(count, rate, connections, load.tag, account), stdout=subprocess.PIPE, text=True, env=env
    )
    lines: list[str] = []
    reader = threading.Thread(target=interrupt_when_done, args=(process, lines), daemon=True)
    reader.start()
    while reader.is_alive():
        reader.join(5)
        if progress and reader.is_alive():
            progress()
    # wait4, not wait: the rusage of wrk itself is the load generator's CPU.
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    load.cpu_s = usage.ru_utime + usage.ru_stime
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}:\n" + "".join(lines))
    parse(load, lines)
    return load


def send_time(recipient: str) -> float | None:
    """The send time (epoch seconds) that single_send.lua put in a recipient address."""
    try:
        return int(recipient.split("@", 1)[0].rsplit("-", 1)[1]) / 1000
    except (IndexError, ValueError):
        return None


def sent_by(load: Load, recipient: str) -> bool:
    return recipient.startswith(load.recipient_prefix)
