"""Automation triggers against the single-send API, in the same run, on the same stack and sink.

    .mailstream/venv/bin/python bench/triggers.py [--count 50000] [--runs 3] [--connections 64]

Needs the stack running (`make run`); installs smtp-sink and wrk if missing. Like `make bench`, it
restarts the stack's sender relaying to Postfix's smtp-sink (bench/sink.py) with the bench
shaping, and back when it ends. Both paths
send the benchmark's 20 KB receipt with 10 line items (bench/workload.py) from a verified sending
domain (DKIM-signed) to distinct recipients, and each is offered its whole count at once:

- triggers: N JSON order records produced to a new 6-partition topic with one rule (acks=all, as
  fast as aiokafka's producer goes); record -> delivered = arrival at the sink - the time the
  record was produced;
- single-send API: N HTTP requests from wrk, `--connections` at a time (as `make bench`'s bursts);
  request -> delivered = arrival at the sink - the time the request was sent.

delivered/s = N / (last arrival - first record produced / first request sent). CPU per delivered
message is each process tree's CPU time from before the load to when the services are quiet again,
the trigger process's included; the load generator is wrk, or this process while it produces.
The runs alternate the two paths.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests/support"))

import triggers_kit as kit
from measure import PIPELINE, Monitor, cpu_rate, cpu_used, pid_of, stack_pids, wait_until_quiet
from runs import Mailstream, print_tagged_table, summarize_tagged, tagged_row
from sink import PEERS, sink_pid, start_sink, stop_sink
from sink import wait_for_files as wait_for_sink
from workload import GATEWAY, BenchAccount, line_items, post, prepare_account

PARTITIONS = 6


def recipient(tag: str, i: int, produced_ms: int) -> str:
    return f"bench-{tag}-{i}-{produced_ms}@example.com"  # as bench/wrk/single_send.lua names them


async def produce_orders(topic: str, count: int, tag: str) -> tuple[float, float]:
    """Produces `count` orders, each naming its produce time in its recipient; returns the first
    record's produce time and this process's CPU seconds spent producing."""
    items = line_items()
    cpu_started, first = time.process_time(), time.time()
    producer = kit.AIOKafkaProducer(bootstrap_servers=kit.BOOTSTRAP, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = []
        for i in range(count):
            to = recipient(tag, i, int(time.time() * 1000))
            order = {"order_id": f"{tag}-{i}", "customer": {"email": to, "first_name": "Ada"}, "items": items}
            futures.append(await producer.send(topic, json.dumps(order).encode(), key=str(i).encode()))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return first, time.process_time() - cpu_started


async def with_rule(account: BenchAccount, topic: str):
    headers = {"Authorization": f"Bearer {account.api_key}"}
    await kit.create_topic(topic, partitions=PARTITIONS)
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as api:
        rule = await kit.create_rule(api, headers, kit.receipt_rule(topic, account.email_id, filter=[]))
    await asyncio.sleep(3)  # the trigger process starts the rule's consumer (refresh 1 s, group join)
    return rule, headers


async def drop_rule(rule: dict, headers: dict, topic: str) -> None:
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as api:
        await api.delete(f"/mailstream/v1/triggers/{rule['id']}", headers=headers)
    await kit.delete_topic(topic)


def trigger_run(ms: Mailstream, account: BenchAccount, count: int) -> dict:
    """`count` order records through one rule, measured as Mailstream.run measures its wrk runs."""
    label, tag = "triggers", uuid.uuid4().hex[:8]
    topic = f"orders.bench.{tag}"
    ms.check_sender()
    rule, headers = asyncio.run(with_rule(account, topic))
    folder = start_sink(f"mailstream-triggers-{tag}")
    try:
        pids = {**stack_pids(), "triggers": pid_of("triggers")}
        with Monitor({**pids, "sink": sink_pid()}) as monitor:
            pipeline = {name: pid for name, pid in pids.items() if pid and name in (*PIPELINE, "triggers")}
            quiet = cpu_rate(pipeline) + 0.05
            cpu_before = monitor.cpu()
            first, producer_cpu_s = asyncio.run(produce_orders(topic, count, tag))
            wait_for_sink(folder, count, label, 60)
            settled_s = wait_until_quiet(pipeline, below=quiet)
            cpu = {**cpu_used(cpu_before, monitor.cpu()), "load generator": producer_cpu_s}
        return summarize_tagged(label, count, folder, tag, first, settled_s, cpu)
    finally:
        stop_sink(folder)
        asyncio.run(drop_rule(rule, headers, topic))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    subprocess.run([str(PEERS), "install"], check=True)  # smtp-sink and wrk
    account = prepare_account()
    post(f"/mailstream/v1/emails/{account.email_id}/save-for-automation", account.api_key)
    results = []
    with Mailstream(account) as ms:
        for n in range(args.runs):
            for path in ("triggers", "api") if n % 2 == 0 else ("api", "triggers"):
                if path == "triggers":
                    r = trigger_run(ms, account, args.count)
                else:
                    r = ms.run("single-send API", args.count, connections=args.connections, counted=False)
                print(tagged_row(r), flush=True)
                results.append(r)
    print_tagged_table(results, args.count, "delivered/s")


if __name__ == "__main__":
    main()
