"""One mailstream run: wrk's single-sends through the stack into the bench sink, with the CPU of
every process, Kafka's requests, PostgreSQL's commits and what arrived at the sink."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from counters import PG_STATS_DELAY_S, Counters, counters_after, per_message
from load import Load, run_wrk, send_time, sent_by
from measure import PIPELINE, Monitor, cpu_rate, cpu_used, pid_of, stack_pids, wait_until_quiet
from sink import DUMPS, SINK_PORT, arrivals, count_files, messages, sink_pid, start_sink, stop_sink
from sink import wait_for_files as wait_for_sink
from workload import BenchAccount

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "deploy/local/stack.sh"
BURST_CONNECTIONS = 64

# The shipped shaping caps each destination at KumoMTA's 100 messages/s per IP; a benchmark
# relays everything to one local sink, so it runs the sender with the shipped policy and
# limits an operator would set for their own smart host.
BENCH_SHAPING = """[default]
connection_limit = 20
max_connection_rate = "10000/min"
max_deliveries_per_connection = 1000
max_message_rate = "100000/s"
tls = "opportunistic"
"""


def connections_for(rate: float | None) -> int:
    """Enough connections for the rate at 250 ms per request, and few enough that each sends at
    least every 0.5 s (the gateway closes a connection idle for 5 s: wrk counts a read error)."""
    return BURST_CONNECTIONS if not rate else min(128, max(8, math.ceil(rate / 4)))


@dataclass
class Mailstream:
    """Runs of the pipeline for one bench account, the sender relaying to the bench sink while the
    `with` block runs."""

    account: BenchAccount
    last_run_end: float = field(default=0.0)
    sender_pid: int | None = None

    def __enter__(self) -> Mailstream:
        self.relay_to_bench_sink()
        return self

    def __exit__(self, *exc) -> None:
        use_bench_sink(False)

    def relay_to_bench_sink(self) -> None:
        use_bench_sink(True)
        self.sender_pid = pid_of("sender")

    def check_sender(self) -> None:
        # Someone may restart the shared stack's sender with the current code meanwhile: it then
        # relays to the development sink, and the run's messages would never reach the bench sink.
        if pid_of("sender") != self.sender_pid:
            print("  the sender was restarted meanwhile: restarting it relaying to the bench sink", flush=True)
            self.relay_to_bench_sink()

    def run(
        self,
        label: str,
        n: int,
        *,
        rate: float | None = None,
        connections: int | None = None,
        counted: bool = True,
        sizes: bool = False,
    ) -> dict:
        """n single-sends (at `rate`/s, or as fast as accepted); with `counted`, Kafka requests and
        PostgreSQL commits too; with `sizes`, the delivered messages' size and DKIM signatures."""
        connections = connections or connections_for(rate)
        self.check_sender()
        folder = start_sink(f"mailstream-{label.replace(' ', '-').replace('/', '')}")
        try:
            pids = stack_pids()
            with Monitor({**pids, "sink": sink_pid()}) as monitor:
                before = self.counters_before() if counted else None
                pipeline = {name: pid for name, pid in pids.items() if name in PIPELINE and pid}
                # Quiet after the run = back to what the services used before it (their idle polling,
                # other people's tests) plus a twentieth of a core.
                quiet = cpu_rate(pipeline) + 0.05
                cpu_before = monitor.cpu()
                load = run_wrk(self.account, n, rate=rate, connections=connections, progress=progress(label, folder))
                wait_for_sink(folder, load.ok, label, 60)
                settled_s = wait_until_quiet(pipeline, below=quiet)
                cpu = {**cpu_used(cpu_before, monitor.cpu()), "load generator": load.cpu_s}
                self.last_run_end = time.monotonic()
                after = counters_after(self.last_run_end) if counted else None
            restarted = [name for name, pid in stack_pids().items() if pid != pids[name]]
            if restarted:
                print(f"  {label}: {', '.join(restarted)} restarted during the run: no CPU figure for it", flush=True)
                cpu.update(dict.fromkeys(restarted, float("nan")))
            result = summarize_run(label, load, folder, cpu, dict(monitor.peak))
            result["restarted"] = restarted
            result["counters"] = per_message(before, after, result["delivered"]) if counted else None
            result["rate"] = rate
            result["settled_s"] = settled_s
            if sizes:
                result["mime"] = mime_of(folder, load)
            return result
        finally:
            stop_sink(folder)

    def counters_before(self) -> Counters:
        # The previous run's last commits reach pg_stat_database only this long after it ended.
        time.sleep(max(0.0, self.last_run_end + PG_STATS_DELAY_S - time.monotonic()))
        return Counters.now()


def progress(label: str, folder: Path):
    def show() -> None:
        print(f"  {label}: delivered {count_files(folder):,} so far", flush=True)

    return show


def mime_of(folder: Path, load: Load) -> dict:
    got = messages(folder, recipient_prefix=load.recipient_prefix)
    if not got.all_signed:
        raise SystemExit(
            f"mailstream: {got.count - got.signed} of {got.count} messages at the sink carry no DKIM-Signature"
            " (is the bench account's sending domain verified, and the sender restarted after its insert?)"
        )
    return {"count": got.count, "bytes": got.mime_bytes, "signed": got.signed}


def summarize_run(label: str, load: Load, folder: Path, cpu: dict[str, float], peak: dict[str, float]) -> dict:
    mine = {to: at for to, at in arrivals(folder).items() if sent_by(load, to)}
    e2e_ms = [(at - send_time(to)) * 1000 for to, at in mine.items()]
    delivered = len(mine)
    if foreign := count_files(folder) - delivered:
        print(f"  {label}: {foreign} messages at the sink were not this run's (other mail the stack's sender relayed)")
    first_sent = load.first_ms / 1000
    last_arrival = max(mine.values(), default=first_sent)
    return {
        "label": label,
        "messages": load.requested,
        "retries": load.retries,
        "accepted": load.ok,
        "errors": load.error_count,
        "error_kinds": load.errors,
        "delivered": delivered,
        "accepted_per_s": load.accepted_per_s,
        "delivered_per_s": delivered / (last_arrival - first_sent) if last_arrival > first_sent else float("nan"),
        "accept_p50": load.accept_ms("p50"),
        "accept_p99": load.accept_ms("p99"),
        "e2e_p50": percentile(e2e_ms, 50),
        "e2e_p99": percentile(e2e_ms, 99),
        "lag_p99": load.lag_ms["p99"],
        "lag_max": load.lag_ms["max"],
        "cpu_ms_by_process": {name: used / max(1, delivered) * 1000 for name, used in cpu.items()},
        "memory": peak,
    }


def summarize_tagged(label: str, count: int, folder: Path, tag: str, first: float, settled_s: float, cpu: dict) -> dict:
    """A run whose recipients are bench-<tag>-<ms sent>@...: what arrived, when, and CPU per message."""
    mine = {to: at for to, at in arrivals(folder).items() if to.startswith(f"bench-{tag}-")}
    latencies = [(at - int(to.split("@")[0].rsplit("-", 1)[1]) / 1000) * 1000 for to, at in mine.items()]
    delivered = len(mine)
    last = max(mine.values(), default=first)
    return {
        "label": label,
        "messages": count,
        "delivered": delivered,
        "delivered_per_s": delivered / (last - first) if last > first else float("nan"),
        "e2e_p50": percentile(latencies, 50),
        "e2e_p99": percentile(latencies, 99),
        "settled_s": settled_s,
        "cpu_ms_by_process": {name: used / max(1, delivered) * 1000 for name, used in cpu.items()},
    }


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def tagged_row(r: dict) -> str:
    """One path's run as a row of the tagged benches' table (print_tagged_table)."""
    cpu = r["cpu_ms_by_process"]
    services = ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items() if ms >= 0.005)
    return (
        f"| {r['label']} | {r['delivered']:,}/{r['messages']:,} | {r['delivered_per_s']:,.0f} |"
        f" {r['e2e_p50']:,.0f} | {r['e2e_p99']:,.0f} | {sum(cpu.values()):.2f} | {services} |"
    )


def print_tagged_table(results: list[dict], count: int, rate_name: str) -> None:
    """The triggers and /v3/mail/send benches' results, as docs/benchmarks.md gives them."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{count:,} receipts per path and run (20 KB, 10 items, DKIM) into smtp-sink; load average {load}\n")
    print(f"| path | delivered | {rate_name} | to delivery p50 (ms) | p99 (ms) | CPU ms/msg, all | by process |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(tagged_row(r))


def retried(r: dict) -> str:
    return f" ({r['retries']:,} requests written again after wrk reconnected)" if r["retries"] else ""


def one_line(r: dict) -> str:
    counters = r["counters"]
    line = (
        f"{r['label']}: {r['delivered']:,} of {r['messages']:,} delivered,"
        f" {r['errors']} errors{' ' + str(r['error_kinds']) if r['error_kinds'] else ''}{retried(r)},"
        f" accepted {r['accepted_per_s']:,.0f}/s, delivered {r['delivered_per_s']:,.0f}/s,"
        f" accept p50/p99 {r['accept_p50']:,.1f}/{r['accept_p99']:,.1f} ms,"
        f" request->delivered p50/p99 {r['e2e_p50']:,.0f}/{r['e2e_p99']:,.0f} ms,"
        f" send lag p99/max {r['lag_p99']:.1f}/{r['lag_max']:.1f} ms;"
        f" the services were quiet {r['settled_s']:.1f} s after the last arrival"
    )
    if counters:
        line += (
            f"\n  per delivered message: Kafka produce {counters['produce']:.2f}, fetch {counters['fetch']:.2f},"
            f" all requests {counters['kafka_all']:.2f}; PostgreSQL commits {counters['pg_commits']:.2f}"
        )
    if "mime" in r:
        m = r["mime"]
        line += f"\n  MIME bytes per message {m['bytes']:,.0f} ({m['signed']:,} of {m['count']:,} DKIM-signed)"
    cpu = r["cpu_ms_by_process"]
    return (
        line
        + f"\n  CPU ms per delivered message: {sum(cpu.values()):.2f} in all: "
        + ", ".join(f"{name} {ms:.2f}" for name, ms in cpu.items())
    )


def use_bench_sink(on: bool) -> None:
    """Restarts the stack's sender relaying to the bench sink with the bench shaping, or back."""
    env = dict(os.environ)
    if on:
        policy = DUMPS / "policy"
        shutil.rmtree(policy, ignore_errors=True)
        shutil.copytree(ROOT / "deploy/policy", policy)
        (policy / "shaping.toml").write_text(BENCH_SHAPING)
        env["MAILSTREAM_SENDER_RELAY"] = f"127.0.0.1:{SINK_PORT}"
        env["MAILSTREAM_POLICY_DIR"] = str(policy)
    subprocess.run([str(STACK), "restart", "sender"], check=True, env=env, stdout=subprocess.DEVNULL)
