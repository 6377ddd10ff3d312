"""Fixtures shared by integration and end-to-end tests: the real stack's public surfaces.

A component that is not running fails the test loudly, naming it and how to start it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

GATEWAY = os.environ.get("MAILSTREAM_TEST_GATEWAY_URL", "http://127.0.0.1:8080")
SINK = os.environ.get("MAILSTREAM_TEST_SINK_URL", "http://127.0.0.1:8025")
COMPONENTS = {
    "gateway": f"{GATEWAY}/readyz",
    "renderer": "http://127.0.0.1:8081/readyz",
    "sender": "http://127.0.0.1:8082/readyz",
    "tracker": "http://127.0.0.1:8090/readyz",
    "mail sink": f"{SINK}/healthz",
}
MAILSTREAM_CLI = str(Path(sys.executable).with_name("mailstream"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fault-injection tests restart shared components: they run after everything else."""
    items.sort(key=lambda item: item.get_closest_marker("faults") is not None)


@pytest.fixture(scope="session")
def stack() -> None:
    """Every component of the local stack answers its readiness check."""
    down = []
    for name, url in COMPONENTS.items():
        try:
            ok = httpx.get(url, timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        if not ok:
            down.append(f"{name} ({url})")
    if down:
        pytest.fail("not ready: " + ", ".join(down) + " -- start the stack with `make run` (make test does it)")


@pytest.fixture
def new_account(stack):
    """Creates an account with the admin CLI; returns its API key."""

    def create(name: str = "test") -> str:
        result = subprocess.run(
            [MAILSTREAM_CLI, "accounts", "create", f"{name}-{uuid.uuid4().hex[:6]}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return result.stdout.strip()

    return create


@pytest.fixture
async def api(stack):
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=15) as client:
        yield client


class Sink:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def wait_for(self, rcpt: str, count: int = 1, within: float = 20) -> list[dict]:
        """The messages the sink received for a recipient, once there are `count` of them."""
        deadline = time.monotonic() + within
        while True:
            found = (await self.client.get("/api/messages", params={"rcpt": rcpt})).json()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.1)


@pytest.fixture
async def sink(stack):
    async with httpx.AsyncClient(base_url=SINK, timeout=10) as client:
        yield Sink(client)


@pytest.fixture
def unique_address():
    """A recipient address no other test uses, so tests share the sink without clearing it."""

    def make(domain: str = "example.com") -> str:
        return f"rcpt-{uuid.uuid4().hex[:12]}@{domain}"

    return make
