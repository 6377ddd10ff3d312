"""Recipients/s of a one-off send to 100,000 contacts (issue 23), and CPU per recipient.

    .mailstream/venv/bin/python bench/one_off_send.py [--contacts 100000] [--batch 500] [--peer 2000]

Needs the running stack (`make run`). What is measured is the fan-out itself: the code of the
fan-out process (mailstream.gateway.fanout.batch.fan_out_batch: audience page, contact statuses
and suppressions, decisions, recipient rows, records acknowledged by Kafka, cursor, commit), run
in this process against the stack's PostgreSQL and Kafka broker, publishing to a private topic
(a unique prefix) so that the stack's renderer and sender do not render and deliver 100,000
messages (their throughput is `make bench`'s). The one-off send is created through the HTTP API;
the contacts (a third unsubscribed or quarantined, a tenth hard-bounced) are written with one
SQL statement. The stack's fan-out process is stopped during the run (it would share the work)
and started again at the end; the bench accounts are deleted.

Peer, in the same run: the same code with one recipient per transaction, as one call per
recipient would be, on --peer contacts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from mailstream.core.kafka import reliable_producer
from mailstream.core.settings import CommonSettings
from mailstream.gateway.fanout.batch import fan_out_batch
from mailstream.gateway.keys import hash_api_key
from mailstream.schemas.topics import SEND_REQUESTED

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / ".mailstream/run"
API = "http://127.0.0.1:8080"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_of(*pids: int) -> float:
    """CPU seconds (user + system) of these processes."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def pid(name: str) -> int:
    return int((RUN / f"{name}.pid").read_text())


@dataclass
class Result:
    name: str
    recipients: int
    seconds: float
    cpu_bench: float
    cpu_postgres: float
    cpu_kafka: float

    def row(self) -> str:
        per = lambda s: f"{1e6 * s / self.recipients:,.0f}"  # noqa: E731
        return (
            f"| {self.name} | {self.recipients:,} | {self.seconds:.1f} | {self.recipients / self.seconds:,.0f} |"
            f" {per(self.cpu_bench)} | {per(self.cpu_postgres)} | {per(self.cpu_kafka)} |"
        )


async def account(pool: asyncpg.Pool, name: str) -> tuple[str, int]:
    cli = str(Path(sys.executable).with_name("mailstream"))
    created = await asyncio.to_thread(
        subprocess.run, [cli, "accounts", "create", name], capture_output=True, text=True, check=True
    )
    key = created.stdout.strip()
    account_id = await pool.fetchval("SELECT account_id FROM api_keys WHERE key_hash = $1", hash_api_key(key))
    return key, account_id


async def contacts(pool: asyncpg.Pool, account_id: int, n: int, domain: str) -> None:
    await pool.execute(
        """INSERT INTO contacts (account_id, email, properties, subscription_status, quarantined, bounced)
           SELECT $1, 'c' || lpad(i::text, 6, '0') || '@' || $3, jsonb_build_object('firstname', 'F' || i),
                  CASE WHEN i % 6 = 0 THEN 'UNSUBSCRIBED' ELSE 'SUBSCRIBED' END, i % 6 = 3, i % 10 = 1
           FROM generate_series(0, $2 - 1) AS i""",
        account_id,
        n,
        domain,
    )


async def one_off(api: httpx.AsyncClient, key: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    email = await api.post(
        "/mailstream/v1/emails",
        headers=headers,
        json={"name": "bench", "subject": "Terms", "fromEmail": "legal@shop.example", "html": "<p>Hi</p>"},
    )
    email.raise_for_status()
    body = {"emailId": email.json()["emailId"], "audience": {"allContacts": True}}
    reply = await api.post("/mailstream/v1/one-off-sends", headers=headers, json=body)
    reply.raise_for_status()
    return reply.json()["id"]


async def fan_out(pool, publish, one_off_id: str, *, batch: int, name: str, n: int, backends: list[int]) -> Result:
    """Fans the send out with the fan-out's code; CPU of this process, of the PostgreSQL backends
    serving its connections (`backends`) and of the Kafka broker."""
    kafka = pid("kafka")
    pg0, k0, c0, t0 = cpu_of(*backends), cpu_of(kafka), time.process_time(), time.time()
    while await pool.fetchval("SELECT state FROM one_off_sends WHERE id = $1", one_off_id) != "DONE":
        await fan_out_batch(pool, publish, batch_size=batch, require_sending_domain=False)
    seconds = time.time() - t0
    return Result(
        name,
        n,
        seconds,
        time.process_time() - c0,
        cpu_of(*backends) - pg0,
        cpu_of(kafka) - k0,
    )


def stop_fan_out_process() -> None:
    try:
        fanout = pid("fanout")
        os.kill(fanout, signal.SIGTERM)
    except (OSError, ValueError):
        return
    while Path(f"/proc/{fanout}").exists():
        time.sleep(0.1)


async def main(args: argparse.Namespace) -> None:
    settings = CommonSettings.from_env()
    backends: list[int] = []  # the server process of each of the pool's connections

    async def remember(conn: asyncpg.Connection) -> None:
        backends.append(conn.get_server_pid())

    pool = await asyncpg.create_pool(
        settings.database_url, min_size=2, max_size=2, init=remember, max_inactive_connection_lifetime=0
    )
    prefix = f"bench-{uuid.uuid4().hex[:6]}."
    topic = prefix + SEND_REQUESTED.name
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, SEND_REQUESTED.partitions, 1)])
    producer = reliable_producer(settings.kafka_bootstrap, client_id="bench-one-off")
    await producer.start()

    async def publish(records):
        await producer.send_all([(topic, key, value) for _, key, value in records])

    accounts = []
    stop_fan_out_process()
    try:
        async with httpx.AsyncClient(base_url=API, timeout=60) as api:
            results = []
            for name, n, batch in (("fan-out", args.contacts, args.batch), ("one per transaction", args.peer, 1)):
                key, account_id = await account(pool, f"bench-one-off-{uuid.uuid4().hex[:6]}")
                accounts.append(account_id)
                await contacts(pool, account_id, n, f"bench-{uuid.uuid4().hex[:6]}.example")
                one_off_id = await one_off(api, key)
                label = f"{name} (batch {batch})"
                results.append(
                    await fan_out(pool, publish, one_off_id, batch=batch, name=label, n=n, backends=backends)
                )
                print(f"{label}: {n:,} recipients in {results[-1].seconds:.1f} s", file=sys.stderr)
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()
        for account_id in accounts:
            await pool.execute("DELETE FROM accounts WHERE id = $1", account_id)
        await pool.close()
        await asyncio.to_thread(subprocess.run, [str(ROOT / "deploy/local/stack.sh"), "restart", "fanout"], check=False)

    print(
        "| run | recipients | seconds | recipients/s | CPU us/recipient: fan-out code | its PostgreSQL"
        " backends | Kafka |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(r.row())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--peer", type=int, default=2_000, help="recipients of the one-per-transaction peer")
    asyncio.run(main(parser.parse_args()))
