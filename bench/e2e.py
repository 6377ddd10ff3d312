"""End-to-end benchmark: mailstream against its peers, on the same sink, in the same run.

    make bench            # the full runs of issue 8 (about 35 minutes; bench/README.md)
    make bench QUICK=1    # smaller runs, for trying the harness
    .mailstream/venv/bin/python bench/e2e.py --count 1000 [--rate 50] [--connections 64] [--profile]
                          # one mailstream run, no peers, no report: its figures and CPU per process

Every path ends at Postfix's smtp-sink (bench/sink.py). mailstream: single-send HTTP requests from
wrk (bench/load.py, bench/wrk/single_send.lua) for a 20 KB HTML receipt with 10 line items, through
gateway -> Kafka -> renderer -> sender (DKIM-signing) -> smtp-sink. Peers (bench/peers.py):
smtp-source into smtp-sink, Postfix + OpenDKIM relaying messages of the size mailstream delivered,
a naive smtplib loop, and the sender's own benchmark against Postfix.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from counters import KafkaRequests
from peers import peer_ceiling, peer_naive, peer_postfix, sender_benchmark
from profiling import Profiles, summarize
from report import ACCEPT_P99_GOAL_MS, report, write_report
from runs import Mailstream, one_line
from sink import PEERS
from workload import prepare_account

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "deploy/local/stack.sh"
PROFILES = ROOT / ".mailstream/bench"
SUSTAINED_RATE = 500  # the goal: accept p99 <= 25 ms and request->delivered p99 <= 1 s at 500/s


def prepare() -> None:
    subprocess.run([str(PEERS), "install"], check=True)
    subprocess.run([str(STACK), "up"], check=True, stdout=subprocess.DEVNULL)


def one_run(n: int, rate: float | None, connections: int | None, profile: bool) -> None:
    """No peers, no report: one run's figures and where its CPU goes, for profiling work."""
    prepare()
    label = f"{n:,} at {rate:g}/s" if rate else f"burst {n:,}"
    with KafkaRequests(), Mailstream(prepare_account()) as bench:
        if not profile:
            print(one_line(bench.run(label, n, rate=rate, connections=connections, sizes=True)))
            return
        with Profiles(PROFILES / f"profile-{time.strftime('%Y%m%d-%H%M%S')}") as profiles:
            result = bench.run(label, n, rate=rate, connections=connections, sizes=True)
    print(one_line(result))
    print("(a profiled run: py-spy's sampling costs CPU too; compare its figures with another profiled run)")
    print(summarize(profiles))


def probe(bench: Mailstream, rate: int) -> bool:
    """10 s (at least 300 sends, for a p99 worth the name) at `rate`: accept p99 within the goal?"""
    result = bench.run(f"probe {rate}/s", max(300, rate * 10), rate=rate, counted=False)
    ok = result["accept_p99"] <= ACCEPT_P99_GOAL_MS and result["errors"] == 0
    print(f"  probe {rate}/s: accept p99 {result['accept_p99']:.1f} ms {'ok' if ok else 'too slow'}", flush=True)
    return ok


def probe_sustainable_rate(bench: Mailstream, burst_rate: float) -> tuple[int, bool]:
    """The highest offered rate with accept p99 <= 25 ms: down from the burst's accept rate in
    steps, then halfway back up towards the last rate that failed. (lowest rate, False) when
    none met it."""
    failed = None
    for share in (0.8, 0.6, 0.4, 0.25, 0.15, 0.1):
        rate = max(5, round(burst_rate * share))
        if probe(bench, rate):
            if failed and (middle := (rate + failed) // 2) > rate and probe(bench, middle):
                return middle, True
            return rate, True
        failed = rate
    return failed, False


@dataclass(frozen=True)
class Sizes:
    burst: int
    sustained_s: int
    scales: tuple[int, ...]
    ceiling: int
    naive: int
    sender: int


FULL = Sizes(burst=10000, sustained_s=60, scales=(1000, 10000, 100000), ceiling=5000, naive=2000, sender=5000)
QUICK = Sizes(burst=1000, sustained_s=15, scales=(300, 3000), ceiling=2000, naive=500, sender=2000)


def full_run(sizes: Sizes, command: str) -> None:
    prepare()
    with KafkaRequests(), Mailstream(prepare_account()) as bench:
        # Not reported: the first thousand sends after a start also pay for the JIT compiling
        # Kafka's hot paths (about 2 ms per message more broker CPU in a 1,000 burst).
        bench.run("warm-up", 1000, counted=False)
        burst = bench.run(f"burst {sizes.burst:,}", sizes.burst, sizes=True)
        print(one_line(burst), flush=True)
        peers = peer_runs(sizes, burst["mime"]["bytes"])
        probed = probe_sustainable_rate(bench, burst["accepted_per_s"])
        runs = [burst, *sustained_runs(bench, probed[0], sizes.sustained_s)]
        at_500 = runs[-1]
        for n in sizes.scales:
            runs.append(bench.run(f"scale {n:,}", n))
            print(one_line(runs[-1]), flush=True)
    print("the sender's own benchmark ...", flush=True)
    sender = sender_benchmark(sizes.sender)
    text = report(command, peers, runs, at_500, probed, sender)
    print(text)
    write_report(text)


def peer_runs(sizes: Sizes, mime_bytes: float) -> list[dict]:
    print("peers, with messages of the size mailstream delivered ...", flush=True)
    peers = [
        peer_ceiling(sizes.ceiling, mime_bytes),
        peer_postfix(sizes.burst, mime_bytes),
        peer_naive(sizes.naive, mime_bytes),
    ]
    for p in peers:
        print(f"  {p['path']}: {p['delivered_per_s']:,.0f} delivered/s", flush=True)
    return peers


def sustained_runs(bench: Mailstream, probed_rate: int, seconds: int) -> list[dict]:
    """At the probed rate, then at the issue's 500/s whatever the probes found (last)."""
    runs = []
    for rate in dict.fromkeys((probed_rate, SUSTAINED_RATE)):
        runs.append(bench.run(f"sustained {seconds}s at {rate}/s", rate * seconds, rate=rate))
        print(one_line(runs[-1]), flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs for trying the harness")
    parser.add_argument("--count", type=int, metavar="N", help="one mailstream run of N sends only (no peers)")
    parser.add_argument("--rate", type=float, help="with --count: sends per second (default: as fast as accepted)")
    parser.add_argument("--connections", type=int, help="with --count: wrk's connections (requests in flight at most)")
    parser.add_argument("--profile", action="store_true", help="with --count: py-spy profiles of the four services")
    args = parser.parse_args()
    if args.count:
        one_run(args.count, args.rate, args.connections, args.profile)
        return
    full_run(QUICK if args.quick else FULL, "make bench" + (" QUICK=1" if args.quick else ""))


if __name__ == "__main__":
    main()
