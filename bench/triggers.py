"""Automation triggers against the single-send API, in the same run, on the same stack and sink.

    .mailstream/venv/bin/python bench/triggers.py [--count 50000] [--connections 64]

Needs the stack running (`make run`). Both paths send the benchmark's 20 KB receipt with 10 line
items (bench/workload.py) from a verified sending domain (DKIM-signed) to distinct recipients
spread over 20 recipient domains, and end at the stack's mail sink (127.0.0.1:8025, emptied
before each path). Each path is offered its whole count at once:

- triggers: N JSON order records produced to a new topic with one rule (acks=all, as fast as the
  producer goes); record -> delivery = the sink's arrival time - the time the record was produced;
- single-send API: N HTTP requests, `--connections` at a time (httpx); request -> delivery = the
  sink's arrival time - the time the request was sent.

records/s (sends/s) end to end = N / (last arrival - first record produced / first request sent).
The load generator runs on the same machine (2 cores) as the stack, for both paths alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/support"))

import triggers_kit as kit
from workload import line_items, post, prepare_account

GATEWAY = "http://127.0.0.1:8080"
SINK = "http://127.0.0.1:8025"
DOMAINS = 20


def recipient(path: str, run: str, i: int) -> str:
    return f"{path}-{i}@d{i % DOMAINS}.{run}.example"


async def arrivals(sink: httpx.AsyncClient, count: int, within: float) -> dict[str, float]:
    """Recipient -> arrival time at the sink (epoch seconds), once `count` arrived (or the time is up)."""
    deadline = time.monotonic() + within
    while True:
        found = (await sink.get("/api/messages", params={"envelope_only": "1"}, timeout=120)).json()
        if len(found) >= count or time.monotonic() > deadline:
            return {m["rcpt_tos"][0]: datetime.fromisoformat(m["received_at"]).timestamp() for m in found}
        await asyncio.sleep(1)


def figures(label: str, started: dict[str, float], arrived: dict[str, float]) -> dict:
    latencies = sorted(arrived[r] - t for r, t in started.items() if r in arrived)
    first = min(started.values())
    last = max(arrived.values()) if arrived else first
    n = len(latencies)
    return {
        "path": label,
        "count": len(started),
        "delivered": n,
        "per_s": n / (last - first) if last > first else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if n else None,
        "p99_ms": 1000 * latencies[min(n - 1, int(n * 0.99))] if n else None,
    }


async def trigger_path(account, count: int, run: str, sink: httpx.AsyncClient) -> dict:
    topic = f"orders.bench.{run}"
    await kit.create_topic(topic, partitions=6)
    headers = {"Authorization": f"Bearer {account.api_key}"}
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as api:
        rule = await kit.create_rule(api, headers, kit.receipt_rule(topic, account.email_id, filter=[]))
    try:
        await asyncio.sleep(3)  # the trigger process starts the rule's consumer (refresh 1 s, group join)
        items = line_items()
        started: dict[str, float] = {}
        producer = kit.AIOKafkaProducer(bootstrap_servers=kit.BOOTSTRAP, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = []
            for i in range(count):
                to = recipient("trigger", run, i)
                order = {"order_id": f"{run}-{i}", "customer": {"email": to, "first_name": "Ada"}, "items": items}
                started[to] = time.time()
                futures.append(await producer.send(topic, json.dumps(order).encode(), key=str(i).encode()))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        return figures("triggers (Kafka records)", started, await arrivals(sink, count, within=count / 20 + 120))
    finally:
        async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as api:
            await api.delete(f"/mailstream/v1/triggers/{rule['id']}", headers=headers)
        await kit.delete_topic(topic)


async def api_path(account, count: int, run: str, connections: int, sink: httpx.AsyncClient) -> dict:
    headers = {"Authorization": f"Bearer {account.api_key}"}
    items = line_items()
    started: dict[str, float] = {}
    queue = iter(range(count))
    refused = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal refused
        for i in queue:
            to = recipient("api", run, i)
            body = {
                "emailId": account.email_id,
                "message": {"to": to, "sendId": f"api-{run}-{i}"},
                "contactProperties": {"firstname": "Ada"},
                "customProperties": {"order_id": f"{run}-{i}", "items": items},
            }
            started[to] = time.time()
            reply = await client.post("/marketing/v3/transactional/single-email/send", headers=headers, json=body)
            refused += reply.status_code != 200

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=60, limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    result = figures("single-send API (HTTP)", started, await arrivals(sink, count, within=count / 20 + 120))
    result["refused"] = refused
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    account = prepare_account()
    post(f"/mailstream/v1/emails/{account.email_id}/save-for-automation", account.api_key)
    run = uuid.uuid4().hex[:8]
    results = []
    async with httpx.AsyncClient(base_url=SINK, timeout=60) as sink:
        for path in ("triggers", "api"):
            await sink.delete("/api/messages")
            if path == "triggers":
                results.append(await trigger_path(account, args.count, run, sink))
            else:
                results.append(await api_path(account, args.count, run, args.connections, sink))
        await sink.delete("/api/messages")
    print(f"\n{args.count:,} receipts per path (20 KB, 10 line items, DKIM), delivered to the stack's sink\n")
    print("| path | delivered | per second end to end | p50 to delivery (ms) | p99 to delivery (ms) |")
    print("|---|---|---|---|---|")
    for r in results:
        delivered = f"{r['delivered']:,}/{r['count']:,}"
        print(f"| {r['path']} | {delivered} | {r['per_s']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")


if __name__ == "__main__":
    asyncio.run(main())
