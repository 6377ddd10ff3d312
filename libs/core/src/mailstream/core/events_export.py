"""`mailstream events export`: a topic's records between two times, as a file an analyst opens
(Parquet, CSV or JSON lines), in bounded memory whatever the topic's size.

    mailstream events export --topic email.engagement --since 2026-12-01 --until 2026-12-02 \
        --format parquet --out engagement.parquet

The window is on the records' Kafka timestamps: each partition is read from the first offset at
or after --since (Kafka's time index) to the end offset it had when the export started, and
records after --until are left out. One row per record: the record's fields (a nested value as
JSON text in CSV and Parquet), then `kafka_partition`, `kafka_offset`, `kafka_timestamp`.
Records the schemas cannot decode are counted and skipped.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
import time
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from mailstream.schemas.codec import DecodeError, decode
from mailstream.schemas.topics import BY_NAME

FORMATS = ("parquet", "csv", "jsonl")
KAFKA_COLUMNS = ("kafka_partition", "kafka_offset", "kafka_timestamp")
ROWS_PER_CHUNK = 10_000  # rows held before they are written: the memory bound


def columns_of(record_type: type) -> list[tuple[str, str]]:
    """(column, kind) for a record type: kind is string, int, bool, float, timestamp, bytes or json."""
    hints = typing.get_type_hints(record_type)
    return [(f.name, _kind(hints[f.name])) for f in dataclasses.fields(record_type)] + [
        ("kafka_partition", "int"),
        ("kafka_offset", "int"),
        ("kafka_timestamp", "timestamp"),
    ]


def _kind(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)] or [str]
    if isinstance(hint, type):
        for base, kind in ((bool, "bool"), (int, "int"), (float, "float"), (datetime, "timestamp")):
            if issubclass(hint, base):
                return kind
        if issubclass(hint, (str, Enum)):
            return "string"
        if issubclass(hint, bytes):
            return "bytes"
    return "json"  # dicts, tuples, lists


def row_of(record: Any, partition: int, offset: int, timestamp_ms: int) -> dict[str, Any]:
    """A record's fields as plain values (enums by value), and where it was on the topic."""
    row = {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}
    row.update(
        kafka_partition=partition,
        kafka_offset=offset,
        kafka_timestamp=datetime.fromtimestamp(timestamp_ms / 1000, UTC),
    )
    return row


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _cell(value: Any, kind: str) -> Any:
    """A value as CSV and Parquet hold it: nested values as JSON text (CSV: times in ISO 8601)."""
    if value is None or kind not in ("json", "bytes"):
        return value
    return json.dumps(value, default=str, sort_keys=True) if kind == "json" else value


def jsonable(value: Any) -> Any:
    """A value as JSON holds it: times in ISO 8601, enums by value, bytes as UTF-8 text (`events tail` too)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


class JsonLines:
    def __init__(self, out: IO[bytes], columns: list[tuple[str, str]]) -> None:
        self.out = out

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.out.write(b"".join(json.dumps(jsonable(row)).encode() + b"\n" for row in rows))

    def close(self) -> None:
        self.out.flush()


class Csv:
    def __init__(self, out: IO[bytes], columns: list[tuple[str, str]]) -> None:
        self.columns = columns
        self.text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
        self.writer = csv.writer(self.text)
        self.writer.writerow([name for name, _ in columns])

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.writer.writerows([[_csv_cell(row[name], kind) for name, kind in self.columns] for row in rows])

    def close(self) -> None:
        self.text.flush()
        self.text.detach()


def _csv_cell(value: Any, kind: str) -> Any:
    return jsonable(value) if isinstance(value, (datetime, bytes)) else _cell(value, kind)


class Parquet:
    """One row group per chunk of rows, so memory stays bounded; pyarrow is imported only here."""

    def __init__(self, out: IO[bytes], columns: list[tuple[str, str]]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa, self.columns = pa, columns
        types_ = {
            "string": pa.string(),
            "json": pa.string(),
            "int": pa.int64(),
            "bool": pa.bool_(),
            "float": pa.float64(),
            "timestamp": pa.timestamp("ms", tz="UTC"),
            "bytes": pa.binary(),
        }
        self.schema = pa.schema([(name, types_[kind]) for name, kind in columns])
        self.writer = pq.ParquetWriter(out, self.schema, compression="zstd")

    def write(self, rows: list[dict[str, Any]]) -> None:
        arrays = {name: [_cell(row[name], kind) for row in rows] for name, kind in self.columns}
        self.writer.write_table(self.pa.Table.from_pydict(arrays, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


WRITERS = {"jsonl": JsonLines, "csv": Csv, "parquet": Parquet}


class Progress:
    """records, bytes read, rate: a line on stderr redrawn twice a second (every 5 s when stderr is
    not a terminal)."""

    def __init__(self, stream: IO[str] = sys.stderr) -> None:
        self.stream, self.started, self.shown = stream, time.monotonic(), 0.0
        self.every = 0.5 if stream.isatty() else 5.0
        self.records = self.bytes = self.skipped = 0

    def add(self, size: int) -> None:
        self.records += 1
        self.bytes += size
        if (now := time.monotonic()) - self.shown >= self.every:
            self.shown = now
            self.show(end="\r" if self.every < 1 else "\n")

    def show(self, end: str = "\n") -> None:
        seconds = max(time.monotonic() - self.started, 1e-6)
        skipped = f", {self.skipped:,} undecodable skipped" if self.skipped else ""
        rate = self.records / seconds
        self.stream.write(f"{self.records:,} records, {self.bytes / 1e6:,.1f} MB, {rate:,.0f} records/s{skipped}{end}")
        self.stream.flush()


async def export(
    bootstrap: str,
    topic: str,
    out: IO[bytes],
    fmt: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> int:
    """Writes the topic's records in [since, until] to `out`; returns the number of rows."""
    spec = BY_NAME[topic]
    columns = columns_of(spec.value_type)
    writer = WRITERS[fmt](out, columns)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    rows_written = 0
    try:
        known = consumer.partitions_for_topic(topic) or range(spec.partitions)
        parts = [TopicPartition(topic, p) for p in sorted(known)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        starts = await _start_offsets(consumer, parts, since)
        pending = set()
        for tp in parts:
            if starts[tp] < ends[tp]:
                consumer.seek(tp, starts[tp])
                pending.add(tp)
        until_ms = int(until.timestamp() * 1000) if until else None
        rows: list[dict[str, Any]] = []
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=ROWS_PER_CHUNK)
            for tp, records in batches.items():
                for msg in records:
                    if msg.offset >= ends[tp]:
                        break
                    if progress:
                        progress.add(len(msg.value or b""))
                    if until_ms is not None and msg.timestamp > until_ms:
                        continue
                    try:
                        rows.append(row_of(decode(msg.value, spec.value_type), tp.partition, msg.offset, msg.timestamp))
                    except DecodeError:
                        if progress:
                            progress.skipped += 1
            for tp in list(pending):  # the position passes control records too, which getmany never returns
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
                    consumer.pause(tp)
            if len(rows) >= ROWS_PER_CHUNK or (rows and not pending):
                writer.write(rows)
                rows_written += len(rows)
                rows = []
    finally:
        await consumer.stop()
        writer.close()
    if progress:
        progress.show()
    return rows_written


async def _start_offsets(consumer, parts: list[TopicPartition], since: datetime | None) -> dict[TopicPartition, int]:
    beginnings = await consumer.beginning_offsets(parts)
    if since is None:
        return beginnings
    found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in parts})
    ends = await consumer.end_offsets(parts)
    return {tp: found[tp].offset if found.get(tp) else ends[tp] for tp in parts}


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or time; a naive one is UTC."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def open_out(path: str | None, fmt: str) -> tuple[IO[bytes], Callable[[], None]]:
    if path is None or path == "-":
        if fmt == "parquet":
            raise SystemExit("--format parquet needs --out FILE (Parquet is not a stream)")
        return sys.stdout.buffer, lambda: None
    f = Path(path).open("wb")
    return f, f.close
