"""Helpers every test tier may import (pyproject's `pythonpath` puts this folder on sys.path;
conftest modules cannot be imported under --import-mode=importlib).

- `free_port(*hosts)`: a port for a server a test starts in another process.
- `common_settings()`: the Kafka and PostgreSQL the tests use, from MAILSTREAM_* like the services.
- `link_scanner_pause()`: how long to wait after a delivery until a click counts as a person's.
- `dev_feedback(name)`: the local stack's feedback-loop credentials (deploy/local/feedback.env).
- `db_fetch(query, *args)`, `db_rows(query, *args)`: rows of the stack's PostgreSQL, now or once
  there are some (what a service writes moments after an action).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
from pathlib import Path

from mailstream.core.settings import CommonSettings

# Below the kernel's ephemeral range, above the stack's contract ports (2525 ... 9093).
_FIRST, _LAST = 20_000, 32_767
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


def _bindable(port: int, hosts: tuple[str, ...], kind: int) -> bool:
    for host in hosts:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def free_port(*hosts: str, udp: bool = False) -> int:
    """A port free on every host given (default 127.0.0.1), never handed out twice in this run.

    A server started in this process should bind port 0 itself and report the port it got: that
    is race-free. A child process (a private gateway, sender, sink, smtp-sink, dnsmasq) needs
    the port up front, and "bind port 0, close, pass the number on" races: the kernel may give
    the same port to anyone's next outgoing connection or bind(0) before the child binds it.
    So the port comes from outside the kernel's ephemeral range (which both of those draw from),
    at random, checked free by binding it on each host.
    """
    hosts = hosts or ("127.0.0.1",)
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    low, high = _ephemeral_range()
    candidates = [p for p in range(_FIRST, _LAST + 1) if not low <= p <= high and p not in _handed_out]
    random.shuffle(candidates)  # two test runs on one host rarely try the same ports in turn
    for port in candidates[:2000]:
        if _bindable(port, hosts, kind):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"no free port between {_FIRST} and {_LAST} outside the ephemeral range {low}-{high}")


def common_settings() -> CommonSettings:
    """MAILSTREAM_KAFKA_BOOTSTRAP and MAILSTREAM_DATABASE_URL (and the rest), read as the services read them."""
    return CommonSettings.from_env()


def link_scanner_pause(margin: float = 0.5) -> float:
    """Seconds from a delivery until a click on its links counts as a person's: the tracker's
    link-scanner window (MAILSTREAM_LINK_SCANNER_WINDOW_S, as the running tracker reads it) and a margin."""
    from mailstream.tracker.settings import TrackerSettings  # only the tracking tests need the tracker

    return TrackerSettings.from_env().link_scanner_window_s + margin


async def db_fetch(query: str, *args) -> list:
    import asyncpg  # the unit tier does not need it

    conn = await asyncpg.connect(common_settings().database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def db_rows(query: str, *args, within: float = 10.0) -> list:
    """The query's rows once it returns some, or [] after `within` seconds."""
    for _ in range(max(1, int(within / 0.1))):
        if rows := await db_fetch(query, *args):
            return rows
        await asyncio.sleep(0.1)
    return []


def dev_feedback(name: str) -> str:
    """MAILSTREAM_<name> as the local stack's tracker reads it: the environment, else feedback.env."""
    key = f"MAILSTREAM_{name}"
    if key in os.environ:
        return os.environ[key]
    env = Path(__file__).resolve().parents[2] / "deploy/local/feedback.env"
    for line in env.read_text().splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1]
    raise KeyError(key)


async def single_send_email(api, key: str, *, html: str, subject: str = "Your order", **fields) -> int:
    """A TRANSACTIONAL email (template) of the account `key`, converted to the single-send API;
    its emailId. `fields` override the email's other properties (fromEmail, name, ...)."""
    headers = {"Authorization": f"Bearer {key}"}
    body = {
        "name": "Receipt",
        "subject": subject,
        "fromName": "Shop",
        "fromEmail": "orders@shop.example",
        "html": html,
        "subscriptionType": "TRANSACTIONAL",
        **fields,
    }
    created = await api.post("/mailstream/v1/emails", headers=headers, json=body)
    assert created.status_code == 201, created.text
    email_id = created.json()["emailId"]
    converted = await api.post(f"/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=headers)
    assert converted.status_code == 200, converted.text
    return int(email_id)
