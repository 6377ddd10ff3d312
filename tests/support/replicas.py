"""A second replica of a stack service (`python -m mailstream.<service>`) on its own ops port,
in the same consumer group as the stack's own process, so the two share the topic's partitions."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx

from testkit import free_port

# The setting that moves each service's HTTP port off the stack's; the tracker's feedback-loop
# SMTP listener is left to the stack's replica.
PORT_SETTINGS = {
    "renderer": {"MAILSTREAM_RENDERER_OPS_PORT": "{port}"},
    "sender": {"MAILSTREAM_SENDER_OPS_PORT": "{port}"},
    "tracker": {"MAILSTREAM_TRACKER_HTTP_PORT": "{port}", "MAILSTREAM_FEEDBACK_SMTP_PORT": "0"},
}


class Replica:
    def __init__(self, service: str, log_path: str, env: dict[str, str] | None = None) -> None:
        self.service = service
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ports = {k: v.format(port=self.port) for k, v in PORT_SETTINGS[service].items()}
        self.env = {**os.environ, **ports, **(env or {})}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self, within: float = 60) -> Replica:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"mailstream.{self.service}"], env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.service} replica exited; see {self.log_path}"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.service} replica not ready within {within}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no graceful stop, like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
