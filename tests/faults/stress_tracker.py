"""Manual reproduction (not collected by pytest): the tracker under restarts, on the running stack.

    .mailstream/venv/bin/python tests/faults/stress_tracker.py [RATE] [SECONDS] [PLAN]

Publishes RATE MessageRendered + DELIVERED pairs per second for SECONDS while the faults of PLAN run
one after the other, 12 s apart: t = kill -9 the tracker and restart it, k = restart Kafka,
x = kill -9 the tracker and restart Kafka while the tracker starts again. Then waits up to
300 s for every status to be COMPLETE and prints how many are not, and whether the statistics
counted each message exactly once (docs/reliability.md). Only the tracker reads these topics.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer

from mailstream.core.settings import LinkSettings
from mailstream.schemas import MessageRendered, encode
from mailstream.schemas.topics import DELIVERY, RENDERED_META

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench/tracker"))
from pipeline import records  # noqa: E402  (the tracker benchmark's synthetic records)

SETTINGS = LinkSettings.from_env()


def sh(*args: str) -> None:
    subprocess.run(list(args), check=True, timeout=300, stdout=subprocess.DEVNULL, cwd=ROOT)


def kill_9(service: str) -> None:
    pid = int((ROOT / f".mailstream/run/{service}.pid").read_text())
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
    time.sleep(0.5)


def restart_tracker() -> None:
    try:
        sh("deploy/local/stack.sh", "restart", "tracker")
    except subprocess.CalledProcessError:
        print("  (that tracker start was cut short by the next fault)", flush=True)


def faults(plan: str) -> None:
    time.sleep(8)
    for step in plan:
        print(time.strftime("%H:%M:%S"), {"t": "kill -9 tracker", "k": "Kafka restart", "x": "both"}[step], flush=True)
        if step in "tx":
            kill_9("tracker")
        if step == "t":
            restart_tracker()
        if step == "x":
            threading.Thread(target=restart_tracker).start()
            time.sleep(6)
        if step in "kx":
            sh("deploy/local/kafka.sh", "stop")
            sh("deploy/local/kafka.sh", "start")
        time.sleep(12)


async def publish(producer: AIOKafkaProducer, topic: str, value: bytes, key: bytes) -> None:
    while True:  # through the broker restarts
        try:
            await producer.send_and_wait(topic, value, key=key)
            return
        except Exception:
            await asyncio.sleep(0.5)


async def main(rate: float, seconds: float, plan: str) -> None:
    logging.disable(logging.CRITICAL)  # aiokafka logs every refused connection
    account_id = random.randint(900_000_000, 999_999_999)
    producer = AIOKafkaProducer(bootstrap_servers=SETTINGS.kafka_bootstrap, acks="all", request_timeout_ms=10_000)
    await producer.start()
    injecting = threading.Thread(target=faults, args=(plan,))
    injecting.start()
    n, started, pending = int(rate * seconds), time.monotonic(), set()
    for i in range(n):
        rendered, delivered = records(account_id, i)

        async def pair(r=rendered, d=delivered) -> None:
            await publish(producer, RENDERED_META.name, encode(MessageRendered.of(r)), r.message_id.encode())
            await publish(producer, DELIVERY.name, encode(d), d.message_id.encode())

        task = asyncio.create_task(pair())
        pending.add(task)
        task.add_done_callback(pending.discard)
        await asyncio.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
    await asyncio.gather(*pending)
    await producer.stop()
    await asyncio.to_thread(injecting.join)
    db = await asyncpg.connect(SETTINGS.database_url)
    deadline = time.monotonic() + 300
    while True:
        rows = await db.fetch("SELECT status, count(*) FROM send_outcomes WHERE account_id = $1 GROUP BY 1", account_id)
        found = {r["status"]: r["count"] for r in rows}
        if found.get("COMPLETE", 0) >= n or time.monotonic() > deadline:
            break
        await asyncio.sleep(5)
    print(f"{n} pairs: {found.get('COMPLETE', 0)} COMPLETE, {found.get('PROCESSING', 0)} PROCESSING,", end=" ")
    print(f"{n - sum(found.values())} without a status")
    counted = await db.fetchrow(
        "SELECT sent, delivered FROM stats WHERE account_id = $1 AND dimension = 'account'", account_id
    )
    print(f"statistics: sent {counted['sent'] if counted else 0}, delivered {counted['delivered'] if counted else 0}")
    for table in ("send_outcomes", "tracked_messages", "stats"):
        await db.execute(f"DELETE FROM {table} WHERE account_id = $1", account_id)
    await db.close()


if __name__ == "__main__":
    defaults = ["50", "150", "xktk"]
    rate, seconds, plan = (sys.argv[1:] + defaults[len(sys.argv) - 1 :])[:3]
    asyncio.run(main(float(rate), float(seconds), plan))
