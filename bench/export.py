"""`mailstream events export` of 100,000 events (issue 20): records/s, CPU per record and peak
memory, against kcat copying the same records raw in the same run.

    .mailstream/venv/bin/python bench/export.py [--events 100000] [--runs 3]

Needs the running stack (`make run`). Writes --events EngagementRecorded records (opens and
clicks of a bench account that has no emails) to email.engagement in the stack's wire format,
waits until the tracker has consumed them (it counts them, as it would real ones), then runs, --runs
times each and alternating: the export of that window to Parquet, CSV and JSON lines, and the
peer, `kcat -C -e -o s@<ms> -f '%s'` (the bytes of every record of the window, no decoding) to a
file. Each is one child process: its wall time, CPU (user + system) and peak RSS come from wait4.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from mailstream.core.kafka import reliable_producer
from mailstream.core.schema_registry import use_schema_registry
from mailstream.core.settings import CommonSettings
from mailstream.schemas import EngagementKind, EngagementRecorded, encode
from mailstream.schemas.topics import ENGAGEMENT

CLI = str(Path(sys.executable).with_name("mailstream"))
BENCH_ACCOUNT = 2**31 - 7  # no such account: the tracker counts its stats and nothing else reads them
TRACKER_GROUP = "mailstream-tracker"


@dataclass
class Run:
    name: str
    seconds: float
    cpu: float
    peak_mb: float
    out_mb: float


def child(command: list[str], out: Path) -> Run:
    """Runs one command to completion; its wall time, CPU and peak RSS (wait4's rusage)."""
    started = time.monotonic()
    with out.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[0]} failed: {process.stderr.read().decode()}")
    return Run(command[0], seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.stat().st_size / 1e6)


async def produce(settings: CommonSettings, n: int) -> datetime:
    await use_schema_registry(settings.schema_registry_url)
    producer = reliable_producer(settings.kafka_bootstrap, client_id="bench-export")
    await producer.start()
    since = datetime.now(UTC) - timedelta(seconds=1)
    try:
        for start in range(0, n, 5000):
            sends = []
            for i in range(start, min(n, start + 5000)):
                event = EngagementRecorded(
                    event_id=str(uuid.uuid4()),
                    kind=EngagementKind.OPEN if i % 3 else EngagementKind.CLICK,
                    message_id=str(uuid.uuid4()),
                    account_id=BENCH_ACCOUNT,
                    recipient=f"r{i}@bench.example",
                    occurred_at=datetime.now(UTC),
                    url=None if i % 3 else "https://shop.example/orders/1001",
                    user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
                    client_ip="192.0.2.10",
                )
                sends.append(await producer.send(ENGAGEMENT.name, encode(event), key=event.message_id.encode()))
            await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return since


async def wait_for_tracker(settings: CommonSettings, within: float = 600) -> None:
    """Until the tracker's group has committed the end of email.engagement: its work is not measured."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    await admin.start()
    try:
        parts = [TopicPartition(ENGAGEMENT.name, p) for p in consumer.partitions_for_topic(ENGAGEMENT.name) or ()]
        ends = await consumer.end_offsets(parts)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(TRACKER_GROUP, partitions=parts)
            if all(committed.get(tp) and committed[tp].offset >= ends[tp] for tp in parts):
                return
            await asyncio.sleep(1)
        print("the tracker did not catch up; measuring anyway", file=sys.stderr)
    finally:
        await consumer.stop()
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = CommonSettings.from_env()
    since = asyncio.run(produce(settings, args.events))
    asyncio.run(wait_for_tracker(settings))
    window = ["--since", since.isoformat(), "--until", datetime.now(UTC).isoformat()]
    export = [CLI, "events", "export", "--topic", ENGAGEMENT.name, *window]
    kcat = ["kcat", "-C", "-b", settings.kafka_bootstrap, "-t", ENGAGEMENT.name, "-e", "-q", "-f", "%s"]
    kcat += ["-o", f"s@{int(since.timestamp() * 1000)}"]
    commands = {
        "parquet": [*export, "--format", "parquet", "--out", "{out}"],
        "csv": [*export, "--format", "csv"],
        "jsonl": [*export, "--format", "jsonl"],
        "kcat raw copy (peer)": kcat,
    }
    results: dict[str, list[Run]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "out"
        for _ in range(args.runs):
            for name, command in commands.items():
                run = child([part.replace("{out}", str(out) + ".file") for part in command], out)
                if name == "parquet":
                    run.out_mb = Path(str(out) + ".file").stat().st_size / 1e6
                results[name].append(run)
    wire = "Confluent's wire format" if settings.schema_registry_url else "single-object encoding"
    print(f"\n{args.events:,} EngagementRecorded records ({wire}), {args.runs} runs each, alternating\n")
    print("| what | records/s | wall s | CPU per record (µs) | peak RSS (MB) | file (MB) |")
    print("|---|---|---|---|---|---|")
    for name, runs in results.items():
        print(
            f"| {name} | {span(args.events / r.seconds for r in runs)} | {span([r.seconds for r in runs], 1)} |"
            f" {span(1e6 * r.cpu / args.events for r in runs)} | {span(r.peak_mb for r in runs)} |"
            f" {runs[-1].out_mb:.1f} |"
        )


def span(values, digits: int = 0) -> str:
    values = sorted(values)
    low, high = f"{values[0]:,.{digits}f}", f"{values[-1]:,.{digits}f}"
    return low if low == high else f"{low}-{high}"


if __name__ == "__main__":
    main()
