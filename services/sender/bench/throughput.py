"""Delivered messages/s of one sender process into a fast SMTP sink.

    .mailstream/venv/bin/python services/sender/bench/throughput.py --messages 5000 --size 20000

Private topics (a unique prefix) and a private consumer group: the shared stack is not touched.
The messages (20 KB, two source IPs 127.0.0.2/.3) are produced first; then one sender process
starts and the clock runs from the sink's first to its last message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from mailstream.schemas import EmailRendered, SubscriptionType, encode
from mailstream.schemas.topics import DEAD_LETTER, DELIVERY, RENDERED, RETRY_TIERS

HERE = Path(__file__).resolve().parent
KAFKA = "127.0.0.1:9092"
POLICY = """
[sources.a]
address = "127.0.0.2"
[sources.b]
address = "127.0.0.3"
[pools.shared.a]
[pools.shared.b]
"""
SHAPING = "[default]\nconnection_limit = {connections}\nmax_deliveries_per_connection = 100000\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def message(n: int, size: int) -> EmailRendered:
    mid = str(uuid.uuid4())
    body = ("x" * 76 + "\r\n") * (size // 78)
    mime = f"From: a@shop.example\r\nTo: b{n}@example.com\r\nSubject: bench {n}\r\n\r\n{body}".encode()
    now = datetime.now(UTC)
    return EmailRendered(
        message_id=mid,
        status_id=mid,
        account_id=1,
        subscription_type=SubscriptionType.TRANSACTIONAL,
        mail_from="a@shop.example",
        recipients=(f"b{n}@example.com",),
        pool="shared",
        sending_ip=("127.0.0.2", "127.0.0.3")[n % 2],
        sending_domain="shop.example",
        mime=mime,
        requested_at=now,
        rendered_at=now,
    )


PEERS = Path(__file__).resolve().parents[3] / "bench/peers.sh"


async def arrivals(folder: Path, expected: int, deadline: float) -> tuple[int, float]:
    """Messages smtp-sink dumped into `folder`, and the seconds from the first to the last."""
    while time.time() < deadline:
        names = os.listdir(folder) if folder.exists() else []
        if len(names) >= expected:
            break
        await asyncio.sleep(0.2)
    times = sorted(os.stat(folder / n).st_mtime for n in os.listdir(folder))
    return len(times), (times[-1] - times[0]) if times else 0.0


async def postfix_peer(args, folder: Path, sink_port: int) -> None:
    """Postfix relaying smtp-source's messages of the same size into a fresh smtp-sink."""
    subprocess.run([str(PEERS), "sink-start", str(folder), str(sink_port)], check=True)
    subprocess.run([str(PEERS), "postfix-start", str(sink_port)], check=True)
    try:
        started = time.time()
        source = [
            "smtp-source",
            "-l",
            str(args.size),
            "-m",
            str(args.messages),
            "-s",
            "20",
            "-f",
            "a@peer.example",
            "-t",
            "b@example.com",
            "127.0.0.1:25",
        ]
        await asyncio.to_thread(subprocess.run, source, check=True, capture_output=True)
        count, _ = await arrivals(folder, args.messages, started + args.timeout)
        last = max(os.stat(folder / n).st_mtime for n in os.listdir(folder))
        elapsed = last - started
        row = f"| smtp-source -> Postfix (queue on disk) -> smtp-sink | {count} | {args.size} B | - | {elapsed:.2f}"
        print(f"{row} | {count / elapsed:.0f} |", flush=True)
    finally:
        subprocess.run([str(PEERS), "postfix-stop"], check=False)


async def main(args) -> None:
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    specs = [RENDERED, *RETRY_TIERS, DELIVERY, DEAD_LETTER]
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    await admin.create_topics([NewTopic(prefix + s.name, s.partitions, 1) for s in specs])
    sink_port, ops_port = free_port(), free_port()
    dumps = Path(tempfile.mkdtemp(dir="/dev/shm"))
    dumps.chmod(0o755)  # smtp-sink writes its dumps as nobody
    if args.smtp_sink:  # Postfix's smtp-sink, as for the Postfix peer below
        subprocess.run([str(PEERS), "sink-start", str(dumps / "sender"), str(sink_port)], check=True)
        sink = None
    else:
        sink = subprocess.Popen(
            [sys.executable, str(HERE / "fast_sink.py"), str(sink_port)], stdout=subprocess.PIPE, text=True
        )
    sender = None
    try:
        producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=20, max_request_size=10 << 20)
        await producer.start()
        futures = [
            await producer.send(prefix + RENDERED.name, encode(m), key=m.sending_ip.encode())
            for m in (message(n, args.size) for n in range(args.messages))
        ]
        await asyncio.gather(*futures)
        await producer.stop()
        policy = Path(tempfile.mkdtemp())
        (policy / "pools.toml").write_text(POLICY)
        (policy / "shaping.toml").write_text(SHAPING.format(connections=args.connections))
        env = {
            **os.environ,
            "MAILSTREAM_SENDER_TOPIC_PREFIX": prefix,
            "MAILSTREAM_SENDER_GROUP_ID": prefix + "sender",
            "MAILSTREAM_SENDER_RELAY": f"127.0.0.1:{sink_port}",
            "MAILSTREAM_SENDER_OPS_PORT": str(ops_port),
            "MAILSTREAM_POLICY_DIR": str(policy),
            "MAILSTREAM_LOG_LEVEL": "WARNING",
        }
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        sender = subprocess.Popen([sys.executable, *profile, "-m", "mailstream.sender"], env=env)
        deadline = time.time() + args.timeout
        print("| path | messages | size | connections per IP | seconds | messages/s |")
        print("|---|---|---|---|---|---|")
        if sink is None:
            count, elapsed = await arrivals(dumps / "sender", args.messages, deadline)
            sink_name = "Postfix smtp-sink"
        else:
            line = ""
            while time.time() < deadline:
                line = await asyncio.to_thread(sink.stdout.readline)
                count, first, last = line.split()
                if int(count) >= args.messages:
                    break
            count, first, last = line.split()
            elapsed = float(last) - float(first)
            sink_name = "fast sink"
        rate = (int(count) - 1) / elapsed if elapsed else 0
        row = f"| one sender process -> {sink_name} | {count} | {args.size} B | {args.connections} | {elapsed:.2f}"
        print(f"{row} | {rate:.0f} |", flush=True)
        if args.smtp_sink:
            sender.terminate()
            sender.wait(30)
            sender = None
            await postfix_peer(args, dumps / "postfix", sink_port)
    finally:
        if sender is not None:
            sender.terminate()
            sender.wait(30)
        if sink is not None:
            sink.terminate()
        else:
            subprocess.run([str(PEERS), "sink-stop"], check=False)
        shutil.rmtree(dumps, ignore_errors=True)
        await admin.delete_topics([prefix + s.name for s in specs])
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--profile", default="", help="write a cProfile of the sender process here")
    parser.add_argument(
        "--smtp-sink",
        action="store_true",
        help="deliver into Postfix's smtp-sink and measure Postfix relaying the same in the run",
    )
    asyncio.run(main(parser.parse_args()))
