"""The broker's and the database's own request counters, read before and after a run.

Kafka: the produce and fetch requests the broker served (RequestMetrics RequestsPerSec Count), read
over HTTP from the Jolokia JVM agent, attached to the running broker for the benchmark (JVM attach
API: the broker is not restarted) on 127.0.0.1:8778 only, and detached at the end. PostgreSQL: the
transactions committed in all databases (pg_stat_database.xact_commit). Both count every client of
the broker and the database: other work on the machine during a run shows up in them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from measure import pid_of
from workload import DATABASE_URL

ROOT = Path(__file__).resolve().parents[1]
JOLOKIA_VERSION = "2.5.1"
JOLOKIA_JAR = ROOT / f".mailstream/bench/jolokia/jolokia-agent-jvm-{JOLOKIA_VERSION}-javaagent.jar"
JOLOKIA_PORT = 8778
JOLOKIA_URL = f"http://127.0.0.1:{JOLOKIA_PORT}/jolokia"
REQUESTS_MBEAN = "kafka.network:type=RequestMetrics,name=RequestsPerSec,*"
# PostgreSQL 15 flushes a backend's statistics at most once a second, and an idle backend's last
# ones after 10 s (PGSTAT_IDLE_INTERVAL): a run's last commits show only that long after it.
PG_STATS_DELAY_S = 11


def fetch_jolokia() -> None:
    """The agent's jar from Maven Central, with mvn, as deploy/local/kafka.sh fetches Kafka's."""
    if JOLOKIA_JAR.exists():
        return
    JOLOKIA_JAR.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy",
            f"-Dartifact=org.jolokia:jolokia-agent-jvm:{JOLOKIA_VERSION}:jar:javaagent",
            f"-DoutputDirectory={JOLOKIA_JAR.parent}",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def jolokia_get(path: str) -> dict:
    with urllib.request.urlopen(f"{JOLOKIA_URL}/{path}", timeout=10) as reply:
        answer = json.loads(reply.read())
    if answer.get("status") != 200:
        raise RuntimeError(f"jolokia {path}: {answer.get('error', answer)}")
    return answer["value"]


def jolokia_agent_pid() -> int | None:
    """The pid of the JVM whose Jolokia agent answers on the port, if one does."""
    try:
        runtime = jolokia_get("read/java.lang:type=Runtime/Name")  # "pid@host"
    except OSError:
        return None
    return int(runtime.split("@", 1)[0])


def jolokia(command: str, pid: int) -> None:
    subprocess.run(
        ["java", "-jar", str(JOLOKIA_JAR), "--host", "127.0.0.1", "--port", str(JOLOKIA_PORT), command, str(pid)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


class KafkaRequests:
    """Attaches the agent to the broker for the benchmark (one left by an interrupted run is
    reused) and detaches it at the end, so that nothing listens on the port afterwards."""

    def __init__(self) -> None:
        self.pid = pid_of("kafka")

    def __enter__(self) -> KafkaRequests:
        if self.pid is None:
            raise SystemExit("kafka is not running (no .mailstream/run/kafka.pid): make run")
        found = jolokia_agent_pid()
        if found is not None and found != self.pid:
            raise SystemExit(f"port {JOLOKIA_PORT} answers for pid {found}, not for the broker ({self.pid})")
        fetch_jolokia()
        if found is None:
            jolokia("start", self.pid)
        return self

    def __exit__(self, *exc) -> None:
        jolokia("stop", self.pid)

    @staticmethod
    def counts() -> dict[str, int]:
        """Requests served since the broker started, by request type (summed over API versions)."""
        counts: dict[str, int] = {}
        for name, attributes in jolokia_get(f"read/{REQUESTS_MBEAN}/Count").items():
            kind = dict(part.split("=", 1) for part in name.split(":", 1)[1].split(","))["request"]
            counts[kind] = counts.get(kind, 0) + int(attributes["Count"])
        return counts


def pg_commits() -> int:
    async def read() -> int:
        db = await asyncpg.connect(DATABASE_URL)
        try:
            return int(await db.fetchval("SELECT sum(xact_commit) FROM pg_stat_database"))
        finally:
            await db.close()

    return asyncio.run(read())


@dataclass
class Counters:
    """Counter readings at one moment: Kafka's now, PostgreSQL's later (see PG_STATS_DELAY_S)."""

    kafka: dict[str, int]
    pg_commits: int = 0
    taken_at: float = 0.0

    @classmethod
    def now(cls) -> Counters:
        return cls(KafkaRequests.counts(), pg_commits(), time.monotonic())


def requests_of(kafka: dict[str, int], kinds: tuple[str, ...]) -> int:
    return sum(kafka.get(kind, 0) for kind in kinds)


def counters_after(ended_at: float) -> Counters:
    """Kafka's counts at once; PostgreSQL's once the run's last commits are in its statistics."""
    kafka = KafkaRequests.counts()
    time.sleep(max(0.0, ended_at + PG_STATS_DELAY_S - time.monotonic()))
    return Counters(kafka, pg_commits(), time.monotonic())


def total_requests(kafka: dict[str, int]) -> int:
    # A consumer's fetch counts twice: as Fetch and as FetchConsumer (a follower's as FetchFollower).
    return sum(count for kind, count in kafka.items() if kind not in ("FetchConsumer", "FetchFollower"))


def per_message(before: Counters, after: Counters, delivered: int) -> dict[str, float]:
    """Kafka requests and PostgreSQL commits per delivered message."""
    n = max(1, delivered)

    def delta(*kinds: str) -> int:
        return requests_of(after.kafka, kinds) - requests_of(before.kafka, kinds)

    return {
        "produce": delta("Produce") / n,
        "fetch": delta("Fetch") / n,
        "fetch_consumer": delta("FetchConsumer") / n,
        "kafka_all": (total_requests(after.kafka) - total_requests(before.kafka)) / n,
        "pg_commits": (after.pg_commits - before.pg_commits) / n,
    }
