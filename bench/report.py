"""The report of a full run: markdown tables, printed and written into docs/benchmarks.md between
the e2e markers."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACCEPT_P99_GOAL_MS = 25
E2E_P99_GOAL_MS = 1000
CPU_COLUMNS = (
    "kafka",
    "postgres",
    "gateway",
    "renderer",
    "sender",
    "tracker",
    "postfix",
    "opendkim",
    "sink",
    "load generator",
)


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None or value != value else f"{value:,.{digits}f}"


def total_cpu(run: dict) -> float:
    return sum(run["cpu_ms_by_process"].values())


def machine() -> str:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"Machine: {os.cpu_count()} cores ({model}), {memory_gb:.0f} GB, {platform.platform()},"
        f" Python {platform.python_version()}. Everything (Kafka, PostgreSQL, the four services, the load"
        " generator and the sink) on this one machine."
    )


def like_for_like(burst: dict, postfix: dict) -> list[str]:
    m, p = burst["mime"], postfix
    return [
        f"MIME bytes per message at the sink (CRLF as on the wire): mailstream **{m['bytes']:,.0f}** (burst, mean of"
        f" {m['count']:,} dumps, {m['signed']:,} DKIM-signed by the sender), Postfix peer **{p['mime_bytes']:,.0f}**"
        f" (`smtp-source -l {p['payload']:,}`, {p['signed']:,} of {p['delivered']:,} DKIM-signed by OpenDKIM)."
        " Every path ends at the same Postfix smtp-sink.",
    ]


def paths_table(peers: list[dict], burst: dict) -> list[str]:
    lines = [
        "| path | messages | MIME bytes | accepted/s | delivered/s | CPU ms/msg (all processes) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for p in peers:
        lines.append(
            f"| {p['path']} | {p['messages']:,} | {fmt(p.get('mime_bytes'))} | {fmt(p.get('accepted_per_s'))} |"
            f" {fmt(p['delivered_per_s'])} | {fmt(total_cpu(p), 2)} |"
        )
    lines.append(
        f"| mailstream {burst['label']}: HTTP (wrk) -> gateway -> Kafka -> renderer -> sender -> smtp-sink |"
        f" {burst['messages']:,} | {fmt(burst['mime']['bytes'])} | {fmt(burst['accepted_per_s'])} |"
        f" {fmt(burst['delivered_per_s'])} | {fmt(total_cpu(burst), 2)} |"
    )
    return lines


def runs_table(runs: list[dict]) -> list[str]:
    lines = [
        "| mailstream run | sends | errors | accepted/s | delivered/s | CPU ms/msg | accept p50 / p99 ms |"
        " request->delivered p50 / p99 ms | send lag p99 / max ms | Kafka produce / fetch / all requests per msg |"
        " PG commits per msg |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---|---:|",
    ]
    for r in runs:
        k = r["counters"]
        kafka = f"{fmt(k['produce'], 2)} / {fmt(k['fetch'], 2)} / {fmt(k['kafka_all'], 2)}" if k else "-"
        accept = f"{fmt(r['accept_p50'], 1)} / {fmt(r['accept_p99'], 1)}"
        lines.append(
            f"| {r['label']} | {r['messages']:,} | {r['errors']} | {fmt(r['accepted_per_s'])} |"
            f" {fmt(r['delivered_per_s'])} | {fmt(total_cpu(r), 2)} | {accept} |"
            f" {fmt(r['e2e_p50'])} / {fmt(r['e2e_p99'])} | {fmt(r['lag_p99'], 1)} / {fmt(r['lag_max'], 1)} | {kafka} |"
            f" {fmt(k['pg_commits'], 2) if k else '-'} |"
        )
    return lines


def cpu_table(runs: list[dict], postfix: dict) -> list[str]:
    postfix_total = total_cpu(postfix)
    lines = [
        "| run | " + " | ".join(CPU_COLUMNS) + " | total | vs Postfix relaying |",
        "|---|" + "---:|" * (len(CPU_COLUMNS) + 2),
    ]
    for r in [*runs, {**postfix, "label": "Postfix relaying + OpenDKIM"}]:
        cells = [fmt(r["cpu_ms_by_process"].get(name), 2) for name in CPU_COLUMNS]
        ratio = total_cpu(r) / postfix_total if postfix_total else float("nan")
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {fmt(total_cpu(r), 2)} | {fmt(ratio, 1)}x |")
    disturbed = [f"{r['label']} ({', '.join(r['restarted'])})" for r in runs if r.get("restarted")]
    if disturbed:
        lines += [
            "",
            "Restarted by someone else during the run, so without a CPU figure: " + "; ".join(disturbed) + ".",
        ]
    return lines


def met(ok: bool) -> str:
    return "met" if ok else "not met"


def burst_vs_postfix(burst: dict, postfix: dict) -> str:
    rate_ratio = burst["delivered_per_s"] / postfix["delivered_per_s"]
    cpu, postfix_cpu = total_cpu(burst), total_cpu(postfix)
    return (
        f"- End to end, burst vs Postfix relaying (both DKIM-signing): **{rate_ratio:.2f}x** the messages/s"
        f" (goal 1.5x); CPU per message {fmt(cpu, 2)} ms vs {fmt(postfix_cpu, 2)} ms, **{fmt(cpu / postfix_cpu, 1)}x**"
        " Postfix's."
    )


def at_rate(run: dict) -> str:
    accept_ok = run["accept_p99"] <= ACCEPT_P99_GOAL_MS and run["errors"] == 0
    e2e_ok = run["e2e_p99"] <= E2E_P99_GOAL_MS and run["delivered"] == run["messages"]
    held = "held" if run["lag_p99"] <= 10 else "did not hold"
    lag = f"send lag p99 {fmt(run['lag_p99'], 1)} ms, max {fmt(run['lag_max'])} ms"
    return (
        f"- {run['label']}: accept p99 **{fmt(run['accept_p99'], 1)} ms** (goal <= {ACCEPT_P99_GOAL_MS} ms,"
        f" {met(accept_ok)}), request->delivered p99 **{run['e2e_p99']:,.0f} ms** (goal <= 1 s, {met(e2e_ok)}),"
        f" {run['delivered']:,} of {run['messages']:,} delivered, {run['errors']} errors; the offered rate"
        f" {held} ({lag});"
        f" accepted {fmt(run['accepted_per_s'])}/s at {fmt(total_cpu(run), 2)} ms CPU per message."
    )


def probed_rate(probed: tuple[int, bool]) -> str:
    rate, found = probed
    if found:
        return (
            f"- Highest offered rate with accept p99 <= {ACCEPT_P99_GOAL_MS} ms in the 10 s probes: **{rate}/s**"
            " (its sustained run is in the table)."
        )
    return f"- No probed rate kept accept p99 <= {ACCEPT_P99_GOAL_MS} ms; the lowest probed rate was {rate}/s."


def sender_alone(sender: dict) -> str:
    ratio = sender["sender_per_s"] / sender["postfix_per_s"]
    return (
        f"- The sender alone (`{sender['command']}`): one sender process {sender['sender_per_s']:,.0f}/s"
        f" ({sender['sender_cpu_ms']:.2f} ms CPU per message, sampled, start-up included) vs Postfix"
        f" {sender['postfix_per_s']:,.0f}/s into smtp-sink: **{ratio:.2f}x** (goal >= 2x); 20 KB messages, no DKIM"
        " on either side."
    )


def memory_table(burst: dict, postfix: dict) -> list[str]:
    names = list(burst["memory"])
    postfix_mb = sum(postfix["memory"].values())
    return [
        f"Peak memory (PSS, MB) during the {burst['label']} run:",
        "",
        "| " + " | ".join(names) + " |",
        "|" + "---:|" * len(names),
        "| " + " | ".join(f"{burst['memory'][n]:.0f}" for n in names) + " |",
        "",
        "Postfix peer peak memory (PSS): "
        + ", ".join(f"{name} {mb:.0f} MB" for name, mb in postfix["memory"].items())
        + f" ({postfix_mb:.0f} MB).",
    ]


def report(
    command: str, peers: list[dict], runs: list[dict], at_500: dict, probed: tuple[int, bool], sender: dict
) -> str:
    burst = next(r for r in runs if r["label"].startswith("burst"))
    postfix = next(p for p in peers if "Postfix" in p["path"])
    lines = [
        "## End to end (issue 8)",
        "",
        machine(),
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}); what each figure is:"
        " bench/README.md.",
        "",
        *like_for_like(burst, postfix),
        "",
        *paths_table(peers, burst),
        "",
        *runs_table(runs),
        "",
        burst_vs_postfix(burst, postfix),
        at_rate(at_500),
        probed_rate(probed),
        sender_alone(sender),
        "",
        "CPU ms per delivered message, by process (load generator: wrk for mailstream, smtp-source for Postfix):",
        "",
        *cpu_table(runs, postfix),
        "",
        *memory_table(burst, postfix),
    ]
    return "\n".join(lines) + "\n"


def write_report(text: str) -> None:
    path = ROOT / "docs/benchmarks.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = "<!-- e2e:start -->", "<!-- e2e:end -->"
    block = f"{start}\n{text}{end}"
    if start in current:
        current = current.split(start)[0] + block + current.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)
