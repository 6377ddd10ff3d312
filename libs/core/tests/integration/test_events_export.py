"""`mailstream events export` against the real broker: the records of a time window, all of them
once, in each format, chunked (bounded memory), and the command line's output."""

import asyncio
import csv
import io
import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from aiokafka import AIOKafkaProducer

from mailstream.core import events_export
from mailstream.core.settings import CommonSettings
from mailstream.schemas import RecordDeadLettered, encode
from mailstream.schemas.topics import DEAD_LETTER

pytestmark = pytest.mark.integration
BOOTSTRAP = CommonSettings.from_env().kafka_bootstrap
COUNT = 1200


async def produce_dead_letters(tag: str, n: int) -> None:
    """email.dead-letter: a registry topic no service consumes, so the test's records stay its own."""
    producer = AIOKafkaProducer(bootstrap_servers=BOOTSTRAP, acks="all", linger_ms=5)
    await producer.start()
    try:
        sends = []
        for i in range(n):
            record = RecordDeadLettered(str(uuid.uuid4()), "export-test", "t", 0, i, tag, datetime.now(UTC), b"k")
            sends.append(await producer.send(DEAD_LETTER.name, encode(record), key=f"{tag}-{i}".encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


@pytest.fixture(scope="module")
def window():
    """COUNT records produced between `since` and `until`."""
    tag = f"export-{uuid.uuid4().hex[:8]}"
    since = datetime.now(UTC) - timedelta(milliseconds=5)
    asyncio.run(produce_dead_letters(tag, COUNT))
    return tag, since, datetime.now(UTC) + timedelta(milliseconds=5)


async def export(fmt: str, since, until) -> bytes:
    out = io.BytesIO()
    await events_export.export(BOOTSTRAP, DEAD_LETTER.name, out, fmt, since=since, until=until)
    return out.getvalue()


async def test_each_format_holds_every_record_of_the_window_once(window, monkeypatch):
    tag, since, until = window
    monkeypatch.setattr(events_export, "ROWS_PER_CHUNK", 500)  # several chunks: written as they fill
    lines = [json.loads(line) for line in (await export("jsonl", since, until)).splitlines()]
    mine = [r for r in lines if r["reason"] == tag]
    assert len(mine) == COUNT and len({(r["kafka_partition"], r["kafka_offset"]) for r in mine}) == COUNT
    assert sorted(r["source_offset"] for r in mine) == list(range(COUNT))

    table = list(csv.DictReader(io.StringIO((await export("csv", since, until)).decode())))
    assert sum(r["reason"] == tag for r in table) == COUNT

    parquet = pq.ParquetFile(io.BytesIO(await export("parquet", since, until)))
    assert parquet.metadata.num_row_groups >= COUNT // 500
    reasons = parquet.read(columns=["reason"]).column("reason").to_pylist()
    assert reasons.count(tag) == COUNT


async def test_records_outside_the_window_are_left_out(window):
    tag, since, until = window
    before = await export("jsonl", since - timedelta(hours=1), since - timedelta(minutes=59))
    assert tag.encode() not in before
    after = await export("jsonl", until + timedelta(seconds=1), None)
    assert tag.encode() not in after


def test_the_command_writes_a_file_and_reports_its_progress(window, tmp_path):
    tag, since, until = window
    out = tmp_path / "dead.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "mailstream.core.cli", "events", "export", "--topic", DEAD_LETTER.name,
         "--since", since.isoformat(), "--until", until.isoformat(), "--format", "parquet", "--out", str(out),
         "--bootstrap", BOOTSTRAP],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert pq.read_table(out, columns=["reason"]).column("reason").to_pylist().count(tag) == COUNT
    assert "records/s" in done.stderr.splitlines()[-1]
    refused = subprocess.run(
        [sys.executable, "-m", "mailstream.core.cli", "events", "export", "--topic", DEAD_LETTER.name,
         "--format", "parquet"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode != 0 and "needs --out" in refused.stderr
