"""Fixtures of the sender's integration tests: private SMTP receivers, private Kafka topics
(a unique prefix, so nothing touches the shared stack's topics or consumer group), private
sender processes, and policy folders written per test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiosmtpd.smtp import SMTP

from mailstream.schemas import EmailRendered, SubscriptionType, decode, encode
from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, RENDERED, RETRY_TIERS
from testkit import common_settings, free_port

KAFKA = common_settings().kafka_bootstrap
DATABASE_URL = common_settings().database_url
REPO = Path(__file__).resolve().parents[3]


class Receiver:
    """An aiosmtpd handler that records (peer IP, monotonic time, rcpts, data) and answers
    RCPT with `reply(address)` (None = accept)."""

    def __init__(self, reply=None):
        self.reply = reply or (lambda address: None)
        self.received: list[dict] = []
        self.sessions = 0
        self.rcpt_seen = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        self.rcpt_seen += 1
        answer = self.reply(address)
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(
            {
                "peer": session.peer[0],
                "at": time.monotonic(),
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "data": envelope.original_content or envelope.content,
                "tls": session.ssl is not None,
            }
        )
        return "250 2.0.0 accepted"


@pytest.fixture
async def smtp_server():
    """start(receiver, host="127.0.0.1", **smtp_kwargs) -> receiver with .port set."""
    servers = []

    async def start(receiver: Receiver, host: str = "127.0.0.1", port: int = 0, **kwargs) -> Receiver:
        loop = asyncio.get_running_loop()

        def factory():
            receiver.sessions += 1
            return SMTP(receiver, hostname="private-sink", **kwargs)

        server = await loop.create_server(factory, host, port)
        servers.append(server)
        receiver.port = server.sockets[0].getsockname()[1]
        receiver.server = server
        return receiver

    yield start
    for server in servers:
        server.close()


class Topics:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.rendered = prefix + RENDERED.name
        self.delivery = prefix + DELIVERY.name
        self.retries = [prefix + t.name for t in RETRY_TIERS]

    async def send(self, producer: AIOKafkaProducer, msgs: list[EmailRendered]) -> None:
        futures = [await producer.send(self.rendered, encode(m), key=m.sending_ip.encode()) for m in msgs]
        await asyncio.gather(*futures)

    async def deliveries(self, count: int, within: float = 30.0, until=None) -> list:
        """The first `count` events on the private email.delivery (fewer on timeout, or once
        `until(events)` holds)."""
        consumer = AIOKafkaConsumer(
            self.delivery, bootstrap_servers=KAFKA, auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        events = []
        try:
            deadline = time.monotonic() + within
            while len(events) < count and time.monotonic() < deadline and not (until and until(events)):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    events += [decode(r.value) for r in records]
        finally:
            await consumer.stop()
        return events


@pytest.fixture
async def topics():
    prefix = f"test-{uuid.uuid4().hex[:10]}."
    specs = [RENDERED, *RETRY_TIERS, DELIVERY, DEAD_LETTER]
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    names = [prefix + s.name for s in specs]
    await admin.create_topics([NewTopic(prefix + s.name, s.partitions, 1) for s in specs])
    try:
        yield Topics(prefix)
    finally:
        try:
            await admin.delete_topics(names)
        finally:
            await admin.close()


@pytest.fixture
async def producer():
    p = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=5)
    await p.start()
    yield p
    await p.stop()


POOLS = """
[sources.a]
address = "127.0.0.2"
{extra_a}
[sources.b]
address = "127.0.0.3"
{extra_b}
[sources.c]
address = "127.0.0.4"
{extra_b}
[sources.d]
address = "127.0.0.5"
{extra_b}
[pools.shared.a]
weight = 1
[pools.pair.a]
weight = 1
[pools.pair.b]
weight = 1
"""


@pytest.fixture
def policy_dir(tmp_path):
    """write(shaping="", extra_a="", extra_b="", bounces=None) -> a policy folder."""

    def write(shaping: str = "", extra_a: str = "", extra_b: str = "", warmup: str = "") -> Path:
        folder = tmp_path / f"policy-{uuid.uuid4().hex[:6]}"
        folder.mkdir()
        (folder / "pools.toml").write_text(POOLS.format(extra_a=extra_a, extra_b=extra_b))
        (folder / "shaping.toml").write_text(shaping)
        (folder / "warmup.toml").write_text(warmup)
        (folder / "bounces.toml").write_text((REPO / "deploy/policy/bounces.toml").read_text())
        return folder

    return write


class SenderProcess:
    def __init__(self, proc: subprocess.Popen, ops_port: int, log: Path) -> None:
        self.proc = proc
        self.ops_port = ops_port
        self.log = log

    def metric(self, name: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.ops_port}/metrics", timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    async def stop(self, sig: int = signal.SIGTERM, within: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return await asyncio.to_thread(self.proc.wait, within)


@pytest.fixture
async def sender_process(tmp_path):
    """start(topics, policy, relay="127.0.0.1:PORT", **env) -> a running private sender,
    stopped (SIGTERM, then SIGKILL) at teardown."""
    started: list[SenderProcess] = []

    async def start(topics: Topics, policy: Path, *, relay: str, group: str | None = None, **env) -> SenderProcess:
        ops_port = free_port()
        log = tmp_path / f"sender-{ops_port}.log"
        environ = {
            **os.environ,
            "MAILSTREAM_SENDER_OPS_PORT": str(ops_port),
            "MAILSTREAM_SENDER_TOPIC_PREFIX": topics.prefix,
            "MAILSTREAM_SENDER_GROUP_ID": group or f"{topics.prefix}sender",
            "MAILSTREAM_SENDER_RELAY": relay,
            "MAILSTREAM_POLICY_DIR": str(policy),
            "MAILSTREAM_KAFKA_BOOTSTRAP": KAFKA,
            **{f"MAILSTREAM_{k.upper()}": str(v) for k, v in env.items()},
        }
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child, not awaited here
            [sys.executable, "-m", "mailstream.sender"],
            env=environ,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        process = SenderProcess(proc, ops_port, log)
        started.append(process)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"private sender exited: {log.read_text()[-3000:]}")
            try:
                if (
                    await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{ops_port}/readyz", timeout=2)
                ).status_code == 200:
                    if "partitions assigned" in log.read_text():
                        return process
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        raise AssertionError(f"private sender not ready: {log.read_text()[-3000:]}")

    yield start
    for process in started:
        # Wait without blocking this loop: it serves the private SMTP receivers the sender QUITs.
        if process.proc.poll() is None:
            process.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.proc.wait, 20)
            except subprocess.TimeoutExpired:
                process.proc.kill()
                process.proc.wait()


def rendered(rcpt: str, *, ip: str = "127.0.0.2", pool: str = "shared", domain: str = "shop.example", **kw):
    mid = str(uuid.uuid4())
    now = datetime.now(UTC)
    mime = (
        f"From: orders@{domain}\r\nTo: {rcpt}\r\nSubject: test {mid}\r\nMessage-ID: <{mid}@{domain}>\r\n"
        f"Date: Sat, 28 Nov 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
        f"hello {mid}\r\n"
    ).encode()
    fields = dict(
        message_id=mid,
        status_id=str(uuid.uuid4()),
        account_id=1,
        subscription_type=SubscriptionType.TRANSACTIONAL,
        mail_from=f"orders@{domain}",
        recipients=(rcpt,),
        pool=pool,
        sending_ip=ip,
        sending_domain=domain,
        mime=mime,
        requested_at=now,
        rendered_at=now,
    )
    fields.update(kw)
    return EmailRendered(**fields)


@pytest.fixture
def make_rendered():
    return rendered


@pytest.fixture
def receiver_class():
    return Receiver


class SinkProcess:
    """A private copy of the development mail sink (deploy/local/mailsink.py) in its own
    process, so arrival times are not skewed by the test's event loop."""

    def __init__(self, proc: subprocess.Popen, smtp_port: int, http_port: int) -> None:
        self.proc = proc
        self.port = smtp_port
        self.http = f"http://127.0.0.1:{http_port}"

    async def messages(self) -> list[dict]:
        async with httpx.AsyncClient(timeout=30) as client:
            found = (await client.get(f"{self.http}/api/messages")).json()
        for m in found:
            m["at"] = datetime.fromisoformat(m["received_at"]).timestamp()
        return found

    async def wait_for(self, count: int, within: float) -> list[dict]:
        deadline = time.monotonic() + within
        while True:
            found = await self.messages()
            if len(found) >= count or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.5)


@pytest.fixture
async def sink_process():
    procs = []

    async def start(smtp_port: int | None = None) -> SinkProcess:
        smtp_port, http_port = smtp_port or free_port(), free_port()
        script = str(REPO / "deploy/local/mailsink.py")
        proc = subprocess.Popen(  # noqa: ASYNC220 - a long-lived child
            [sys.executable, script, "--smtp-port", str(smtp_port), "--http-port", str(http_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs.append(proc)
        sink = SinkProcess(proc, smtp_port, http_port)
        for _ in range(100):
            try:
                await sink.messages()
                return sink
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
        raise AssertionError("private mail sink did not start")

    yield start
    for proc in procs:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)


@pytest.fixture
async def db():
    import asyncpg

    conn = await asyncpg.connect(DATABASE_URL)
    yield conn
    await conn.close()


@pytest.fixture
async def account_id(db):
    """A fresh account (created with the admin CLI, as operators do); returns its id."""
    name = f"sender-test-{uuid.uuid4().hex[:8]}"
    cli = str(Path(sys.executable).with_name("mailstream"))
    await asyncio.to_thread(
        subprocess.run, [cli, "accounts", "create", name], capture_output=True, check=True, timeout=60
    )
    return await db.fetchval("SELECT id FROM accounts WHERE name = $1", name)
