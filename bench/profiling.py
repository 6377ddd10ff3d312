"""py-spy profiles of the four services during one run: py-spy's raw output (collapsed stacks, one
frame per function), written again as a speedscope file, and each service's functions with the
most own time (the leaf of a stack: where the CPU was when sampled)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from measure import pid_of

ROOT = Path(__file__).resolve().parents[1]
PY_SPY = Path(sys.executable).with_name("py-spy")
PROFILED = ("gateway", "renderer", "sender", "tracker")
SAMPLES_PER_S = 100
SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"


class Profiles:
    """py-spy record on every service while the `with` block runs. --nonblocking: py-spy reads the
    processes' memory without pausing them, so the services keep their timing (a sample may
    then be slightly torn)."""

    def __init__(self, folder: Path) -> None:
        if not PY_SPY.exists():
            raise SystemExit(f"{PY_SPY} is missing: run deploy/local/python-env.sh (py-spy is a pinned dependency)")
        self.folder = folder
        self.raw: dict[str, Path] = {}
        self._recorders: list[subprocess.Popen] = []

    def __enter__(self) -> Profiles:
        self.folder.mkdir(parents=True, exist_ok=True)
        for name in PROFILED:
            pid = pid_of(name)
            if pid is None:
                raise SystemExit(f"{name} is not running: make run")
            self.raw[name] = self.folder / f"{name}.txt"
            log = (self.folder / f"{name}.py-spy.log").open("w")
            self._recorders.append(
                subprocess.Popen([str(PY_SPY), *record_args(pid, self.raw[name])], stdout=log, stderr=log)
            )
        time.sleep(1)  # py-spy attaches and reads the interpreter's layout first
        return self

    def __exit__(self, *exc) -> None:
        # On SIGINT py-spy stops sampling and writes its output.
        for recorder in self._recorders:
            recorder.send_signal(signal.SIGINT)
        for recorder in self._recorders:
            recorder.wait(60)


def record_args(pid: int, output: Path) -> list[str]:
    return [
        "record",
        "--pid",
        str(pid),
        "--rate",
        str(SAMPLES_PER_S),
        "--format",
        "raw",
        "--function",
        "--nonblocking",
        "--output",
        str(output),
    ]


def read_stacks(raw: Path) -> Counter[tuple[str, ...]]:
    """Collapsed stacks ("outer;...;leaf count" per line) and their sample counts."""
    stacks: Counter[tuple[str, ...]] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[tuple(stack.split(";"))] += int(count)
    return stacks


def write_speedscope(name: str, stacks: Counter[tuple[str, ...]], output: Path) -> None:
    """The stacks as a speedscope "sampled" profile: open it at speedscope's site or its app."""
    frames: dict[str, int] = {}
    samples = [[frames.setdefault(frame, len(frames)) for frame in stack] for stack in stacks]
    weights = list(stacks.values())
    document = {
        "$schema": SPEEDSCOPE_SCHEMA,
        "shared": {"frames": [{"name": frame} for frame in frames]},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "none",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            }
        ],
        "name": name,
        "exporter": "bench/profiling.py",
    }
    output.write_text(json.dumps(document))


def top_own_time(stacks: Counter[tuple[str, ...]], n: int = 8) -> list[tuple[str, float]]:
    """The functions with the most own time, with their share of the samples."""
    own: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[stack[-1]] += count
    total = sum(own.values()) or 1
    return [(frame, count / total) for frame, count in own.most_common(n)]


def summarize(profiles: Profiles) -> str:
    """Writes a speedscope file beside each raw profile; returns the paths and the top functions."""
    lines = []
    for name, raw in profiles.raw.items():
        if not raw.exists():
            lines.append(f"{name}: py-spy wrote no profile ({raw})")
            continue
        stacks = read_stacks(raw)
        speedscope = raw.with_suffix(".speedscope.json")
        write_speedscope(name, stacks, speedscope)
        samples = sum(stacks.values())
        lines.append(f"{name}: {samples:,} samples at {SAMPLES_PER_S}/s (non-idle threads)")
        lines.append(f"  {speedscope.relative_to(ROOT)}  (raw: {raw.relative_to(ROOT)})")
        lines += [f"  {share:6.1%}  {frame}" for frame, share in top_own_time(stacks)]
    return "\n".join(lines)
