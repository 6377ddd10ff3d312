"""Helpers of the security suite (issue 9, bad input and isolation), on top of the root conftest's
fixtures: SMTP tokens with a sending domain, a raw SMTP client, the sink's raw bytes, topic tails,
and the registry of every secret the suite used (test_secrets_in_logs greps the logs for them, last).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import re
import socket
import ssl
import time
import uuid
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from kafka_tail import Tail

from mailstream.core.settings import LinkSettings

SETTINGS = LinkSettings.from_env()
GATEWAY = os.environ.get("MAILSTREAM_TEST_GATEWAY_URL", "http://127.0.0.1:8080")
SINK = os.environ.get("MAILSTREAM_TEST_SINK_URL", "http://127.0.0.1:8025")
SMTP_PORT = int(os.environ.get("MAILSTREAM_TEST_SMTP_PORT", "2587"))
FEEDBACK_PORT = 2591  # TrackerSettings.feedback_smtp_port's default
TOKENS = "/marketing/v3/transactional/smtp-tokens"
SEND = "/marketing/v3/transactional/single-email/send"
EMAILS = "/mailstream/v1/emails"
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE  # the development server's certificate is self-signed


def pytest_collection_modifyitems(items):
    """The log check runs after every other test of this folder (it greps what they logged)."""
    last = [i for i in items if i.path.name == "test_secrets_in_logs.py"]
    items[:] = [i for i in items if i not in last] + last


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client_address() -> str:
    """A loopback source address of its own: failed-AUTH throttling is per address, shared by everyone."""
    return f"127.{random.randrange(100, 250)}.{random.randrange(1, 250)}.{random.randrange(1, 250)}"


def unique(domain: str = "example.com", prefix: str = "sec") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@{domain}"


async def db(query: str, *args):
    conn = await asyncpg.connect(SETTINGS.database_url)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


# --- the secrets the suite used ------------------------------------------------------------------


class Secrets:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, label: str, value: str) -> str:
        self.values[value] = label
        return value


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    return Secrets()


@pytest.fixture
def account(new_account, secrets):
    """new_account, with the key remembered as a secret."""

    def create(name: str = "sec") -> str:
        return secrets.add(f"API key of {name}", new_account(name))

    return create


# --- SMTP tokens with a sending domain -----------------------------------------------------------


@dataclass
class Token:
    key: str
    id: str
    password: str
    account_id: int
    domain: str


@pytest.fixture
def smtp_token(api, account, secrets):
    """A new account with one sending domain (added through the API, not verified) and one token."""

    async def create(name: str = "sec-smtp") -> Token:
        key = account(name)
        created = await api.post(TOKENS, headers=auth(key), json={"createContact": False, "campaignName": name})
        assert created.status_code == 201, created.text
        view = created.json()
        secrets.add(f"SMTP token password of {name}", view["password"])
        account_id = (await db("SELECT account_id FROM smtp_tokens WHERE id = $1", view["id"]))[0]["account_id"]
        domain = f"{name}-{uuid.uuid4().hex[:10]}.example"
        added = await api.post("/mailstream/v1/sending-domains", headers=auth(key), json={"domain": domain})
        assert added.status_code == 201, added.text
        return Token(key, view["id"], view["password"], account_id, domain)

    return create


# --- a raw SMTP client (blocking; run it in a thread) -------------------------------------------


class SmtpError(Exception):
    pass


class RawSmtp:
    """Bytes in, replies out: for dialogues no well-behaved client library would send."""

    def __init__(self, port: int = SMTP_PORT, *, source: str | None = None, timeout: float = 20) -> None:
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout, source_address=(source or "127.0.0.1", 0)
        )
        self.file = self.sock.makefile("rb")
        self.greeting = self.reply()

    def close(self) -> None:
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> RawSmtp:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> tuple[int, str]:
        lines = []
        while True:
            line = self.file.readline(100_000)
            if not line:
                raise SmtpError(f"connection closed after {lines!r}")
            lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
            if len(line) < 4 or line[3:4] != b"-":
                break
        return int(lines[-1][:3]), "\n".join(lines)

    def cmd(self, line: str | bytes) -> tuple[int, str]:
        self.send((line.encode() if isinstance(line, str) else line) + b"\r\n")
        return self.reply()

    def starttls(self) -> None:
        assert self.cmd("EHLO client.example")[0] == 250
        code, text = self.cmd("STARTTLS")
        assert code == 220, text
        self.tls()

    def tls(self) -> None:
        self.sock = TLS.wrap_socket(self.sock, server_hostname="localhost")
        self.file = self.sock.makefile("rb")

    def login(self, user: str, password: str) -> tuple[int, str]:
        assert self.cmd("EHLO client.example")[0] == 250
        blob = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.cmd(f"AUTH PLAIN {blob}")

    def session(self, token: Token) -> RawSmtp:
        self.starttls()
        code, text = self.login(token.id, token.password)
        assert code == 235, text
        return self

    def data(self, message: bytes) -> tuple[int, str]:
        code, text = self.cmd("DATA")
        if code != 354:
            return code, text
        self.send(message + (b"" if message.endswith(b"\r\n") else b"\r\n") + b".\r\n")
        return self.reply()


def retrying(fn, *args, within: float = 60):
    """fn(*args) again while it answers 451 (the shared stack's Kafka or PostgreSQL may be restarting)."""
    deadline = time.monotonic() + within
    while True:
        result = fn(*args)
        code = result[0] if isinstance(result, tuple) else result
        if code != 451 or time.monotonic() > deadline:
            return result
        time.sleep(2)


def message(sender: str, to: str, *, subject: str = "Security suite", extra: bytes = b"", body: bytes = b"") -> bytes:
    return (
        f"From: Shop <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\n".encode()
        + extra
        + b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + (body or b"Hello from the security suite.\r\n")
    )


# --- the sink, raw --------------------------------------------------------------------------------


class RawSink:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def messages(self, rcpt: str) -> list[bytes]:
        found = (await self.client.get("/api/messages", params={"rcpt": rcpt})).json()
        return [base64.b64decode(m["data_base64"]) for m in found]

    async def wait(self, rcpt: str, count: int = 1, within: float = 60) -> list[bytes]:
        deadline = time.monotonic() + within
        while True:
            found = await self.messages(rcpt)
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)


@pytest.fixture
async def raw_sink(stack):
    async with httpx.AsyncClient(base_url=SINK, timeout=10) as client:
        yield RawSink(client)


_LINE_BREAK = re.compile(rb"\r\n|\r|\n|\x85|\xe2\x80[\xa8\xa9]")  # CRLF, bare CR/LF, NEL, U+2028/9


def injected_lines(raw: bytes, names: tuple[bytes, ...]) -> list[bytes]:
    """Lines of the message's header section (split at any kind of line break) that start a header
    named in `names`: what an injection would have produced."""
    head = re.split(rb"\r\n\r\n|\n\n", raw, maxsplit=1)[0]
    wanted = tuple(n.lower() for n in names)
    return [line for line in _LINE_BREAK.split(head) if line.lower().lstrip().startswith(wanted)]


# --- Kafka ------------------------------------------------------------------------------------------


@pytest.fixture
def tail():
    return Tail


@pytest.fixture
async def producer(stack):
    p = AIOKafkaProducer(bootstrap_servers=SETTINGS.kafka_bootstrap, acks="all", max_request_size=10 * 1024 * 1024)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


# --- API sends --------------------------------------------------------------------------------------


async def create_email(api, key: str, **fields) -> tuple[int, httpx.Response]:
    """(email id or 0, the reply that refused it): created and made a single-send API email."""
    body = {
        "name": "Security",
        "subject": "Hello",
        "fromName": "Shop",
        "fromEmail": "orders@shop.example",
        "html": "<p>Hello</p>",
        **fields,
    }
    created = await api.post(EMAILS, headers=auth(key), json=body)
    if created.status_code != 201:
        return 0, created
    email_id = created.json()["emailId"]
    converted = await api.post(f"{EMAILS}/{email_id}/convert-to-single-send-api", headers=auth(key))
    if converted.status_code != 200:
        return 0, converted
    return email_id, converted


async def final_status(api, key: str, status_id: str, within: float = 60) -> dict:
    status: dict = {}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status = (await api.get(f"/marketing/v3/email/send-statuses/{status_id}", headers=auth(key))).json()
        if status.get("status") == "COMPLETE":
            break
        await asyncio.sleep(0.3)
    return status


async def send_result(reply: str) -> str | None:
    """The final sendResult of an SMTP submission, from its "queued as <message id>" reply."""
    message_id = reply.split("queued as ", 1)[1].split()[0]
    for _ in range(100):
        rows = await db(
            """SELECT so.send_result FROM send_requests sr JOIN send_outcomes so USING (status_id)
               WHERE sr.message_id = $1 AND so.status = 'COMPLETE'""",
            uuid.UUID(message_id),
        )
        if rows:
            return rows[0]["send_result"]
        await asyncio.sleep(0.2)
    return None


class Helpers:
    """The helpers above, for test modules (conftest modules cannot be imported under importlib mode)."""

    SETTINGS, GATEWAY, SINK, SMTP_PORT, FEEDBACK_PORT = SETTINGS, GATEWAY, SINK, SMTP_PORT, FEEDBACK_PORT
    TOKENS, SEND, EMAILS, TLS = TOKENS, SEND, EMAILS, TLS
    RawSmtp, SmtpError, Tail = RawSmtp, SmtpError, Tail
    auth = staticmethod(auth)
    client_address = staticmethod(client_address)
    unique = staticmethod(unique)
    db = staticmethod(db)
    message = staticmethod(message)
    injected_lines = staticmethod(injected_lines)
    create_email = staticmethod(create_email)
    final_status = staticmethod(final_status)
    retrying = staticmethod(retrying)
    send_result = staticmethod(send_result)


@pytest.fixture
def h() -> type[Helpers]:
    return Helpers
