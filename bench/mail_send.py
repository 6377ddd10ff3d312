"""SendGrid's /v3/mail/send with 100 and 1,000 personalizations per request against the
single-send API, in the same run, on the same stack and sink (issue 22).

    .mailstream/venv/bin/python bench/mail_send.py [--count 10000] [--runs 3] [--in-flight 4] [--connections 64]

Needs the stack running (`make run`); installs smtp-sink and wrk if missing. As bench/triggers.py
does, it restarts the stack's sender relaying to Postfix's smtp-sink (bench/sink.py) with the bench
shaping, and back when it ends. Every path sends the benchmark's 20 KB receipt with 10 line items
(bench/workload.py) from a verified sending domain (DKIM-signed) to distinct recipients, and is
offered its whole count at once:

- /v3/mail/send: count / P requests of P personalizations (template_id = the receipt, its
  order id and line items as dynamic_template_data), `--in-flight` requests at a time, from this
  process (httpx); the gateway renders each personalization and the renderer takes the whole
  message; request -> delivered = arrival at the sink - the time its request was sent;
- single-send API: count HTTP requests from wrk, `--connections` at a time (bench/runs.py).

recipients/s = delivered / (last arrival - first request sent). CPU per delivered message is each
process tree's CPU time from before the load to when the services are quiet again (bench/measure.py),
the load generator's included (wrk, or this process while it sends). The runs rotate the paths.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import PIPELINE, Monitor, cpu_rate, cpu_used, stack_pids, wait_until_quiet
from runs import Mailstream, print_tagged_table, summarize_tagged, tagged_row
from sink import PEERS, sink_pid, start_sink, stop_sink
from sink import wait_for_files as wait_for_sink
from triggers import recipient
from workload import GATEWAY, BenchAccount, line_items, prepare_account


def from_email(account: BenchAccount) -> str:
    """The receipt's From: an address of the bench account's verified sending domain."""
    headers = {"Authorization": f"Bearer {account.api_key}"}
    return httpx.get(f"{GATEWAY}/mailstream/v1/emails/{account.email_id}", headers=headers).json()["fromEmail"]


def mail_send_body(account: BenchAccount, sender: str, tag: str, first: int, size: int, sent_ms: int) -> dict:
    items = line_items()
    return {
        "personalizations": [
            {
                "to": [{"email": recipient(tag, i, sent_ms)}],
                "dynamic_template_data": {"order_id": f"{tag}-{i}", "items": items},
            }
            for i in range(first, first + size)
        ],
        "from": {"email": sender, "name": "Shop"},
        "template_id": f"d-{account.email_id}",
    }


async def send_all(
    account: BenchAccount, sender: str, count: int, size: int, in_flight: int, tag: str
) -> tuple[float, float]:
    """count recipients in requests of `size` personalizations, `in_flight` at a time; returns the
    first request's send time and this process's CPU seconds spent sending."""
    cpu_started, first = time.process_time(), time.time()
    headers = {"Authorization": f"Bearer {account.api_key}"}
    starts = iter(range(0, count, size))
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=120) as client:

        async def worker() -> None:
            for start in starts:
                body = mail_send_body(account, sender, tag, start, min(size, count - start), int(time.time() * 1000))
                answer = await client.post("/v3/mail/send", headers=headers, json=body)
                if answer.status_code != 202:
                    raise SystemExit(f"/v3/mail/send answered {answer.status_code}: {answer.text[:500]}")

        await asyncio.gather(*(worker() for _ in range(in_flight)))
    return first, time.process_time() - cpu_started


def mail_send_run(ms: Mailstream, account: BenchAccount, sender: str, count: int, size: int, in_flight: int) -> dict:
    label, tag = f"/v3/mail/send, {size:,} per request", uuid.uuid4().hex[:8]
    ms.check_sender()
    folder = start_sink(f"mailstream-sendgrid-{tag}")
    try:
        pids = stack_pids()
        with Monitor({**pids, "sink": sink_pid()}) as monitor:
            pipeline = {name: pid for name, pid in pids.items() if pid and name in PIPELINE}
            quiet = cpu_rate(pipeline) + 0.05
            cpu_before = monitor.cpu()
            first, sender_cpu_s = asyncio.run(send_all(account, sender, count, size, in_flight, tag))
            wait_for_sink(folder, count, label, 60)
            settled_s = wait_until_quiet(pipeline, below=quiet)
            cpu = {**cpu_used(cpu_before, monitor.cpu()), "load generator": sender_cpu_s}
        return summarize_tagged(label, count, folder, tag, first, settled_s, cpu)
    finally:
        stop_sink(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="recipients per path and run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--in-flight", type=int, default=4, help="/v3/mail/send requests at a time")
    parser.add_argument("--connections", type=int, default=64, help="wrk's single sends at a time")
    args = parser.parse_args()
    subprocess.run([str(PEERS), "install"], check=True)  # smtp-sink and wrk
    account = prepare_account()
    sender = from_email(account)
    paths = ("api", 100, 1000)
    results = []
    with Mailstream(account) as ms:
        for n in range(args.runs):
            for path in paths[n % 3 :] + paths[: n % 3]:
                if path == "api":
                    r = ms.run("single-send API", args.count, connections=args.connections, counted=False)
                else:
                    r = mail_send_run(ms, account, sender, args.count, path, args.in_flight)
                print(tagged_row(r), flush=True)
                results.append(r)
    print_tagged_table(results, args.count, "recipients/s")


if __name__ == "__main__":
    main()
