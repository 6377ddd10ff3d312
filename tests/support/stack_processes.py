"""The local stack's processes as the fault tests handle them: kill -9 by the pid file stack.sh wrote."""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN_DIR = ROOT / ".mailstream/run"


def kill_9(service: str) -> None:
    """SIGKILL the stack's `service` and wait until it is gone (or a zombie: stack.sh is its parent)."""
    pid = int((RUN_DIR / f"{service}.pid").read_text())
    os.kill(pid, 9)
    while Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid):
        time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"
