"""CPU time and memory of named process trees, from /proc: no subprocess per sample, so measuring
costs the machine little."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("kafka", "postgres", "gateway", "renderer", "sender", "tracker")
PIPELINE = ("gateway", "renderer", "sender", "tracker")
TICKS = os.sysconf("SC_CLK_TCK")


def pid_from_file(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def pid_of(name: str) -> int | None:
    """A process of the local stack, from its pid file."""
    return pid_from_file(ROOT / f".mailstream/run/{name}.pid")


def stack_pids() -> dict[str, int | None]:
    return {name: pid_of(name) for name in SERVICES}


def stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may hold spaces: the fields after it start past the last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_trees(roots: dict[str, int]) -> dict[str, list[int]]:
    """Each root process with its descendants, from one pass over /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                ppid = int(stat_fields(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))

    def tree(pid: int) -> list[int]:
        return [pid] + [p for child in children.get(pid, ()) for p in tree(child)]

    return {name: tree(pid) for name, pid in roots.items()}


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of the processes, including their children that ended (PostgreSQL's backends
    come and go with the pools' connections: without them a run could show negative CPU)."""
    total = 0
    for pid in pids:
        try:
            total += sum(int(f) for f in stat_fields(pid)[11:15])  # utime, stime, cutime, cstime
        except (OSError, IndexError, ValueError):
            pass
    return total / TICKS


def pss_mb(pids: list[int]) -> float:
    """Memory of the processes as PSS: shared pages (PostgreSQL's shared buffers, Postfix's
    libraries) split between the processes that map them, so the sum over a tree is honest."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            pass
    return total / 1024


def cpu_by_tree(roots: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pids) for name, pids in process_trees(roots).items()}


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before.get(name, 0.0) for name in after}


class Monitor:
    """Samples the peak memory (PSS) of named process trees while a run goes on.

    Every 2 s, in a thread: one sample costs ~30 ms of CPU (the kernel walks the page tables of
    Kafka's heap and of each PostgreSQL backend)."""

    def __init__(self, roots: dict[str, int | None]) -> None:
        self.roots = {name: pid for name, pid in roots.items() if pid}
        self.peak: dict[str, float] = dict.fromkeys(self.roots, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            for name, pids in process_trees(self.roots).items():
                self.peak[name] = max(self.peak[name], pss_mb(pids))
            self._stop.wait(2)

    def cpu(self) -> dict[str, float]:
        return cpu_by_tree(self.roots)

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def cpu_rate(roots: dict[str, int], seconds: float = 1.0) -> float:
    """Cores the processes use together, over `seconds` from now."""
    used = sum(cpu_by_tree(roots).values())
    time.sleep(seconds)
    return (sum(cpu_by_tree(roots).values()) - used) / seconds


def wait_until_quiet(roots: dict[str, int], *, below: float, window: float = 1.0, longest: float = 5.0) -> float:
    """Waits until the processes together use less than `below` cores over `window` seconds, or
    `longest` seconds; returns the seconds waited. A message at the sink is not the end of its
    work: the sender and the tracker record its outcome after it arrived."""
    started = time.monotonic()
    used = sum(cpu_by_tree(roots).values())
    while time.monotonic() - started < longest:
        time.sleep(window)
        now = sum(cpu_by_tree(roots).values())
        if now - used < below * window:
            break
        used = now
    return time.monotonic() - started
