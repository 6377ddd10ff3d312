"""The test tiers, and the fixtures shared by integration and end-to-end tests (the real stack's
public surfaces).

Tiers (README "Tests"): every test has exactly one of the markers unit, integration, e2e, faults.
In a tier folder the folder decides (`*/tests/unit/`, `*/tests/integration/`, `tests/e2e/` and
`tests/security/` = e2e, `tests/faults/`); elsewhere the module says so (`pytestmark`). A unit
test opens no socket: connect, bind and sendto fail it. A component that is not running fails an
integration or end-to-end test loudly, naming it and how to start it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from mailstream.core.schema_registry import read_with_schema_registry
from mailstream.schemas import codec

GATEWAY = os.environ.get("MAILSTREAM_TEST_GATEWAY_URL", "http://127.0.0.1:8080")
SINK = os.environ.get("MAILSTREAM_TEST_SINK_URL", "http://127.0.0.1:8025")
COMPONENTS = {
    "gateway": f"{GATEWAY}/readyz",
    "renderer": "http://127.0.0.1:8081/readyz",
    "sender": "http://127.0.0.1:8082/readyz",
    "tracker": "http://127.0.0.1:8090/readyz",
    "fan-out": "http://127.0.0.1:8083/readyz",
    "triggers": "http://127.0.0.1:8086/readyz",
    "webhooks": "http://127.0.0.1:8084/readyz",
    "mail sink": f"{SINK}/healthz",
}
MAILSTREAM_CLI = str(Path(sys.executable).with_name("mailstream"))


ROOT = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "e2e", "faults")
TIER_FOLDERS = {
    "unit": "unit",  # services/<svc>/tests/unit/, libs/core/tests/unit/
    "integration": "integration",
    "e2e": "e2e",  # tests/e2e/
    "security": "e2e",  # tests/security/: hostile input against the running stack
    "faults": "faults",  # tests/faults/: restarts the stack's components
}
_tier_errors: list[str] = []


def folder_tier(path: Path) -> str | None:
    """The tier a test file's folder decides: the folder right under a `tests` folder."""
    try:
        parts = path.resolve().relative_to(ROOT).parts[:-1]
    except ValueError:  # a test file outside the repository
        return None
    for i, part in enumerate(parts[:-1]):
        if part == "tests" and parts[i + 1] in TIER_FOLDERS:
            return TIER_FOLDERS[parts[i + 1]]
    return None


def pytest_itemcollected(item: pytest.Item) -> None:
    """Gives each test its tier marker (from its folder), or records why it has none or two."""
    declared = {m.name for m in item.iter_markers() if m.name in TIERS}
    tier = folder_tier(item.path)
    where = item.nodeid
    if tier is not None and declared - {tier}:
        _tier_errors.append(f"{where}: in a {tier} folder but marked {', '.join(sorted(declared - {tier}))}")
    elif tier is None and len(declared) != 1:
        found = ", ".join(sorted(declared)) or "none"
        _tier_errors.append(f"{where}: outside a tier folder, needs exactly one of {', '.join(TIERS)} (has {found})")
    elif tier is not None and tier not in declared:
        item.add_marker(tier)


@pytest.hookimpl(trylast=True)  # after tests/security/conftest.py put its log check last
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fails the run on a test without a tier; fault-injection tests (they restart shared
    components) run after everything else."""
    if _tier_errors:
        raise pytest.UsageError("tests without one tier (see conftest.py):\n  " + "\n  ".join(_tier_errors))
    items.sort(key=lambda item: item.get_closest_marker("faults") is not None)


class SocketInUnitTest(RuntimeError):
    """A unit test tried to open a network (or any) socket."""


@pytest.fixture(autouse=True)
def _unit_tests_open_no_socket(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """In the unit tier, socket connect/connect_ex/bind/sendto raise SocketInUnitTest, and the test
    fails at teardown even if the code under test swallowed the error: move such a test to the
    integration tier (or give it a fake)."""
    if request.node.get_closest_marker("unit") is None:
        # The stack `make test` starts writes Confluent's wire format: these tests decode it as the CLI does.
        read_with_schema_registry(os.environ.get("MAILSTREAM_SCHEMA_REGISTRY_URL", ""))
        yield
        return
    codec.use_registry({}, fetch_schema=None)  # a unit test's decoder asks no registry
    attempts: list[str] = []

    def refuse(name: str):
        def guarded(self, *args, **kwargs):
            attempts.append(f"socket.{name}{args!r}")
            raise SocketInUnitTest(f"a unit test opened a socket: socket.{name}{args!r}; move it to tests/integration/")

        return guarded

    for name in ("connect", "connect_ex", "bind", "sendto"):
        monkeypatch.setattr(socket.socket, name, refuse(name))
    yield
    if attempts:
        pytest.fail(f"{request.node.nodeid} is a unit test and used sockets: {attempts}", pytrace=False)


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
