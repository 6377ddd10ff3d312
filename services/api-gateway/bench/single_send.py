"""Load the single-send endpoint at fixed request rates and print accepted/s and p50/p99 latency.

Open loop: requests start on a fixed schedule whatever the answers, and latency is measured
from each request's scheduled start (no coordinated omission). Every request is a real single
send, answered 200 only after Kafka acknowledged it. By default the email references a custom
property the request does not supply, so the renderer ends each send with
MISSING_TEMPLATE_PROPERTIES instead of delivering it: the gateway's path is the same, and the
shared SMTP sink is not flooded. --deliver sends renderable mail instead (then everything is
rendered and delivered by the running stack).

    .mailstream/venv/bin/python services/api-gateway/bench/single_send.py --rates 200,500,1000 --duration 30

Needs a running stack (make run); creates its own account and converted email.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

SEND = "/marketing/v3/transactional/single-email/send"


def create_account() -> str:
    cli = str(Path(sys.executable).with_name("mailstream"))
    out = subprocess.run([cli, "accounts", "create", f"bench-{uuid.uuid4().hex[:6]}"], capture_output=True, text=True)
    out.check_returncode()
    return out.stdout.strip()


async def create_email(session: aiohttp.ClientSession, base: str, headers: dict[str, str], deliver: bool) -> int:
    html = "<p>b {{ custom.n }}</p>" if deliver else "<p>{{ custom.not_supplied_by_the_bench }}</p>"
    body = {"name": "bench", "subject": "Bench", "fromEmail": "orders@shop.example", "html": html}
    async with session.post(f"{base}/mailstream/v1/emails", json=body, headers=headers) as r:
        email_id = (await r.json())["emailId"]
    async with session.post(f"{base}/mailstream/v1/emails/{email_id}/convert-to-single-send-api", headers=headers) as r:
        assert r.status == 200
    return email_id


async def run_rate(session, bases: list[str], headers, email_id, rate: int, duration: float) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    run_id = uuid.uuid4().hex[:8]
    total = int(rate * duration)
    start = time.perf_counter() + 0.2

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        body = {
            "emailId": email_id,
            "message": {"to": f"bench-{run_id}-{i}@bench.example"},
            "customProperties": {"n": i},
        }
        try:
            async with session.post(f"{bases[i % len(bases)]}{SEND}", json=body, headers=headers) as r:
                payload = await r.json(content_type=None)
                outcome = payload.get("status", "?") if r.status == 200 else f"HTTP {r.status}"
        except Exception as exc:  # count, do not stop the run
            outcome = type(exc).__name__
        latencies.append(time.perf_counter() - scheduled)
        statuses[outcome] = statuses.get(outcome, 0) + 1

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    accepted = statuses.get("PENDING", 0)
    return {
        "rate": rate,
        "requests": total,
        "accepted": accepted,
        "other": {k: v for k, v in statuses.items() if k != "PENDING"},
        "accepted_per_s": accepted / elapsed,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": 1000 * latencies[-1],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="gateway URL(s), comma-separated: round robin")
    parser.add_argument("--rates", default="200,500,1000")
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--deliver", action="store_true", help="renderable mail: delivered to the sink")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {create_account()}"}
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        bases = args.url.split(",")
        email_id = await create_email(session, bases[0], headers, args.deliver)
        for _ in range(50):  # warm up connections and caches
            body = {"emailId": email_id, "message": {"to": f"warm-{uuid.uuid4().hex[:8]}@bench.example"}}
            async with session.post(f"{bases[_ % len(bases)]}{SEND}", json=body, headers=headers) as r:
                await r.read()
        rows = []
        for rate in (int(r) for r in args.rates.split(",")):
            rows.append(await run_rate(session, bases, headers, email_id, rate, args.duration))
            await asyncio.sleep(2)
    mode = "delivered" if args.deliver else "ended by the renderer"
    setup = f"open loop, {args.connections} connections, {mode}, {len(bases)} gateway(s)"
    print(f"\nsingle-send, {args.duration:.0f} s per rate, {setup}")
    print("| target req/s | requests | accepted | accepted/s | p50 ms | p99 ms | max ms | other |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(
            f"| {r['rate']} | {r['requests']} | {r['accepted']} | {r['accepted_per_s']:.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['other'] or '-'} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
