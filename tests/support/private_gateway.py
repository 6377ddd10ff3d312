"""`python -m mailstream.gateway` as a private process on its own ports, with extra environment
(a setting the shared stack's gateway does not have, a broker that is down, a restart), for any
tier's tests; the stack's own gateway is left alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import httpx

from testkit import free_port


class PrivateGateway:
    """`python -m mailstream.gateway` on its own port with extra environment; stopped by the test."""

    def __init__(self, env: dict[str, str], log_path: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        ports = {
            "MAILSTREAM_HTTP_PORT": str(self.port),
            "MAILSTREAM_SMTP_PORT": str(free_port()),
            "MAILSTREAM_SMTPS_PORT": str(free_port()),
        }
        self.env = {**os.environ, **ports, **env}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def spawn(self) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mailstream.gateway"], env=self.env, stdout=log, stderr=log
            )

    async def start(self, within: float = 30) -> PrivateGateway:
        self.spawn()
        return await self.wait_healthy(within)

    async def wait_healthy(self, within: float = 30) -> PrivateGateway:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient() as client:
            while time.monotonic() < deadline:
                assert self.proc.poll() is None, f"private gateway exited; see {self.log_path}"
                try:
                    if (await client.get(f"{self.url}/healthz", timeout=1)).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"private gateway did not start within {within}s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no graceful stop, like a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
