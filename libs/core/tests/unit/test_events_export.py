"""What an export row is, and the three formats it is written in (no broker: the writers only)."""

import csv
import io
import json
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from mailstream.core.events_export import WRITERS, Progress, columns_of, parse_time, row_of
from mailstream.schemas import EngagementKind, EngagementRecorded, SendRequested

pytestmark = pytest.mark.unit

AT = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
OPEN = EngagementRecorded("e1", EngagementKind.OPEN, "m1", 7, "ada@example.com", AT, email_id=3, machine=True)


def rows(n: int = 3) -> list[dict]:
    return [row_of(OPEN, partition=i % 2, offset=i, timestamp_ms=int(AT.timestamp() * 1000)) for i in range(n)]


def test_columns_are_the_record_fields_with_their_kinds_then_where_it_was():
    kinds = dict(columns_of(EngagementRecorded))
    assert (kinds["kind"], kinds["account_id"], kinds["occurred_at"], kinds["machine"]) == (
        "string",
        "int",
        "timestamp",
        "bool",
    )
    assert kinds["email_id"] == "int" and kinds["url"] == "string"  # optional fields keep their kind
    assert [name for name, _ in columns_of(EngagementRecorded)][-3:] == [
        "kafka_partition",
        "kafka_offset",
        "kafka_timestamp",
    ]
    send = dict(columns_of(SendRequested))
    assert send["contact_properties"] == send["cc"] == "json" and send["raw_message"] == "bytes"


def test_a_row_holds_plain_values():
    (row,) = rows(1)
    assert row["kind"] == "OPEN" and row["kafka_timestamp"] == AT and row["kafka_partition"] == 0


def write(fmt: str, data: list[dict]) -> bytes:
    out = io.BytesIO()
    writer = WRITERS[fmt](out, columns_of(EngagementRecorded))
    writer.write(data[:2])
    writer.write(data[2:])
    writer.close()
    return out.getvalue()


def test_json_lines_one_object_per_record():
    lines = write("jsonl", rows()).splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["kafka_offset"] == 2
    assert json.loads(lines[0])["occurred_at"] == AT.isoformat()


def test_csv_has_a_header_and_iso_times():
    table = list(csv.DictReader(io.StringIO(write("csv", rows()).decode())))
    assert len(table) == 3 and table[0]["kind"] == "OPEN" and table[0]["occurred_at"] == AT.isoformat()
    assert table[0]["url"] == "" and table[1]["kafka_partition"] == "1" and table[0]["machine"] == "True"


def test_parquet_is_typed_and_written_per_chunk():
    parquet = pq.ParquetFile(io.BytesIO(write("parquet", rows())))
    assert parquet.metadata.num_rows == 3 and parquet.metadata.num_row_groups == 2  # one per write
    table = parquet.read()
    assert str(table.schema.field("occurred_at").type) == "timestamp[ms, tz=UTC]"
    assert table.column("account_id").to_pylist() == [7, 7, 7] and table.column("machine").to_pylist()[0] is True


def test_a_naive_time_is_utc():
    assert parse_time("2026-12-03T10:00") == AT and parse_time("2026-12-03") == datetime(2026, 12, 3, tzinfo=UTC)


def test_progress_names_records_bytes_and_rate():
    shown = io.StringIO()
    progress = Progress(shown)
    for _ in range(4):
        progress.add(250)
    progress.skipped = 1
    progress.show()
    last = shown.getvalue().splitlines()[-1]
    assert last.startswith("4 records, 0.0 MB, ") and last.endswith("records/s, 1 undecodable skipped")
