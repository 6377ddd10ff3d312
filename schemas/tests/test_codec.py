"""Every schema round-trips, the records match their .avsc files, and old data stays readable."""

import dataclasses
import io
from datetime import UTC, datetime

import fastavro
import pytest

from mailstream.schemas import (
    TOPICS,
    DecodeError,
    DeliveryAttempted,
    DeliveryOutcome,
    EmailRendered,
    EngagementKind,
    EngagementRecorded,
    MessageRendered,
    OneOffSendRequested,
    RecordDeadLettered,
    SendRequested,
    SendResult,
    SendSource,
    SubscriptionType,
    SuppressionAction,
    SuppressionChanged,
    UnsubscribeReason,
    UnsubscribeRecorded,
    codec,
    decode,
    encode,
)
from mailstream.schemas.codec import MAGIC, Codec, earlier_schemas, load_schema, schema_fingerprint
from mailstream.schemas.records import SCHEMA_FILES

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 28, 12, 30, 15, 123000, tzinfo=UTC)

SAMPLES = [
    SendRequested(
        message_id="m-1",
        status_id="s-1",
        account_id=7,
        to="jane@example.com",
        requested_at=NOW,
        email_id=42,
        email_version=3,
        cc=("cc@example.com",),
        bcc=("bcc@example.com",),
        reply_to=("help@shop.example",),
        from_override="Shop <orders@shop.example>",
        send_id="order-1001",
        contact_properties={"firstname": "Jane"},
        custom_properties_json='{"items": [1, 2]}',
        source=SendSource.SMTP,
        smtp_token_id="tok",
        campaign_id="c-1",
        raw_message=b"Subject: x\r\n\r\nbody",
        trigger_id="trg-1",
        one_off_send_id="oo-1",
    ),
    EmailRendered(
        message_id="m-1",
        status_id="s-1",
        account_id=7,
        subscription_type=SubscriptionType.MARKETING,
        mail_from="bounces@shop.example",
        recipients=("jane@example.com", "bcc@example.com"),
        pool="shared",
        sending_ip="127.0.0.2",
        sending_domain="shop.example",
        mime=b"\x00\xffbytes",
        requested_at=NOW,
        rendered_at=NOW,
        email_id=42,
        smtp_token_id=None,
        attempt=2,
    ),
    DeliveryAttempted(
        event_id="e-1",
        message_id="m-1",
        status_id="s-1",
        account_id=7,
        recipient="jane@example.com",
        outcome=DeliveryOutcome.BOUNCED,
        send_result=SendResult.UNDELIVERABLE.value,
        occurred_at=NOW,
        bounce_class="InvalidRecipient",
        smtp_code=550,
        smtp_reply="5.1.1 no such user",
        sending_ip="127.0.0.2",
        remote_host="mx.example.com",
        attempt=1,
        started_at=NOW,
        late_report=True,
    ),
    EngagementRecorded(
        event_id="e-2",
        kind=EngagementKind.CLICK,
        message_id="m-1",
        account_id=7,
        recipient="jane@example.com",
        occurred_at=NOW,
        email_id=42,
        url="https://shop.example/o/1",
        user_agent="Mozilla/5.0",
        client_ip="203.0.113.9",
        machine=True,
    ),
    UnsubscribeRecorded(
        event_id="e-3",
        account_id=7,
        recipient="jane@example.com",
        reason=UnsubscribeReason.SPAM_REPORT,
        occurred_at=NOW,
        message_id="m-1",
    ),
    RecordDeadLettered(
        event_id="e-4",
        service="renderer",
        source_topic="email.send.requested",
        source_partition=3,
        source_offset=99,
        reason="corrupt",
        occurred_at=NOW,
        key=b"k",
        value=b"\x01\x02",
    ),
    MessageRendered(
        message_id="m-1",
        status_id="s-1",
        account_id=7,
        recipients=("jane@example.com", "cc@example.com"),
        requested_at=NOW,
        rendered_at=NOW,
        email_id=42,
        smtp_token_id="tok-1",
        trigger_id="trg-1",
        one_off_send_id="oo-1",
    ),
    SuppressionChanged(
        event_id="e-5",
        account_id=7,
        address="jane@example.com",
        action=SuppressionAction.REMOVE,
        occurred_at=NOW,
        reason="BOUNCED",
        note="mailbox fixed",
        requested_by="key:3",
    ),
    OneOffSendRequested(one_off_send_id="oo-1", account_id=7, requested_at=NOW),
]


def test_there_is_a_sample_for_every_schema():
    assert {type(s) for s in SAMPLES} == set(SCHEMA_FILES)


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_round_trips_every_field(record):
    data = encode(record)
    assert data[:2] == MAGIC
    assert decode(data) == record
    assert decode(data, type(record)) == record


@pytest.mark.parametrize("record_type", list(SCHEMA_FILES), ids=lambda t: t.__name__)
def test_record_fields_match_the_avro_schema(record_type):
    schema_fields = [f["name"] for f in load_schema(record_type)["fields"]]
    assert sorted(f.name for f in dataclasses.fields(record_type)) == sorted(schema_fields)
    assert load_schema(record_type)["name"] == record_type.__name__


def test_enums_decode_to_their_types():
    decoded = decode(encode(SAMPLES[2]))
    assert decoded.outcome is DeliveryOutcome.BOUNCED
    assert isinstance(decode(encode(SAMPLES[0])).cc, tuple)


def test_a_newer_schema_reads_data_written_with_the_older_one():
    # The "older" writer lacks a field that the current schema added with a default.
    current = load_schema(DeliveryAttempted)
    older = {**current, "fields": [f for f in current["fields"] if f["name"] != "remote_host"]}
    parsed_older = fastavro.parse_schema(older)
    old_values = {f["name"]: getattr(SAMPLES[2], f["name"]) for f in older["fields"]}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, parsed_older, old_values)
    old_bytes = MAGIC + schema_fingerprint(older) + body.getvalue()

    reader = Codec()
    with pytest.raises(DecodeError, match="unknown writer schema"):
        reader.decode(old_bytes)
    reader.register_writer_schema(DeliveryAttempted, older)
    decoded = reader.decode(old_bytes)
    assert decoded.remote_host is None  # the default filled in
    assert decoded.smtp_reply == SAMPLES[2].smtp_reply


@pytest.mark.parametrize("record_type", list(SCHEMA_FILES), ids=lambda t: t.__name__)
def test_records_written_with_an_earlier_version_of_their_schema_still_decode(record_type):
    for earlier in earlier_schemas(record_type):
        names = {f["name"] for f in earlier["fields"]}
        sample = next(s for s in SAMPLES if type(s) is record_type)
        body = io.BytesIO()
        fastavro.schemaless_writer(body, fastavro.parse_schema(earlier), _avro_values(sample, names))
        decoded = decode(MAGIC + schema_fingerprint(earlier) + body.getvalue())
        assert type(decoded) is record_type and decoded.message_id == sample.message_id


def _avro_values(record, names):
    values = {name: getattr(record, name) for name in names}
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}


@pytest.mark.parametrize("data", [b"", b"not avro", MAGIC + b"\x00" * 8 + b"x", None])
def test_garbage_is_a_decode_error(data):
    with pytest.raises(DecodeError):
        decode(data)


def test_a_truncated_body_is_a_decode_error():
    with pytest.raises(DecodeError, match="corrupt"):
        decode(encode(SAMPLES[0])[:-5])


def test_decoding_as_the_wrong_type_is_refused():
    with pytest.raises(DecodeError, match="expected EmailRendered"):
        codec.decode(encode(SAMPLES[0]), EmailRendered)


def test_every_topic_carries_a_schema_record_and_names_are_unique():
    assert len({t.name for t in TOPICS}) == len(TOPICS)
    for topic in TOPICS:
        assert topic.value_type in SCHEMA_FILES
        assert topic.partitions >= 1
        assert topic.configs["cleanup.policy"] in ("delete", "compact")


def test_send_results_are_the_contracts_51_values():
    assert len(SendResult) == 51
    assert {"SENT", "QUEUED", "MISSING_CONTENT", "PREVIOUS_SPAM", "UBB_GOVERNANCE_MISSING"} <= set(SendResult)


# Confluent's wire format (issue 20): magic byte 0, a 4-byte big-endian schema id, the Avro body.


def test_with_a_registry_records_are_written_in_confluents_wire_format_and_read_back():
    registry = Codec()
    registry.use_registry({t: 100 + n for n, t in enumerate(SCHEMA_FILES)}, fetch_schema=None)
    for record in SAMPLES:
        data = registry.encode(record)
        schema_id = 100 + list(SCHEMA_FILES).index(type(record))
        assert data[:5] == b"\x00" + schema_id.to_bytes(4, "big")
        assert registry.decode(data, type(record)) == record
        # what a stock reader gets: the same Avro body as the single-object encoding's
        assert data[5:] == encode(record)[10:]


def test_both_formats_are_read_during_a_migration():
    before, after = Codec(), Codec()
    after.use_registry({EngagementRecorded: 7}, fetch_schema=None)
    engagement = next(r for r in SAMPLES if isinstance(r, EngagementRecorded))
    old, new = before.encode(engagement), after.encode(engagement)
    assert old[:2] == MAGIC and new[:1] == b"\x00"
    assert after.decode(old) == after.decode(new) == engagement


def test_an_id_not_seen_yet_is_looked_up_once_and_resolved_against_the_current_schema():
    older = earlier_schemas(SendRequested)[0]
    old_body = io.BytesIO()
    fastavro.schemaless_writer(
        old_body,
        fastavro.parse_schema(older),
        _older_send(older),
    )
    lookups = []

    def fetch(schema_id: int) -> dict:
        lookups.append(schema_id)
        return older

    reader = Codec()
    reader.use_registry({}, fetch_schema=fetch)
    data = b"\x00" + (42).to_bytes(4, "big") + old_body.getvalue()
    first, second = reader.decode(data, SendRequested), reader.decode(data, SendRequested)
    assert first == second and first.custom_args == {} and first.to == "a@example.com"
    assert lookups == [42]


def _older_send(schema: dict) -> dict:
    values = {"message_id": "m1", "status_id": "s1", "account_id": 1, "to": "a@example.com", "requested_at": NOW}
    for f in schema["fields"]:
        if f["name"] not in values and "default" in f:
            values[f["name"]] = f["default"]
    return values


def test_unknown_ids_are_decode_errors_that_say_why():
    bare = Codec()
    with pytest.raises(DecodeError, match="no schema registry is configured"):
        bare.decode(b"\x00\x00\x00\x00\x09" + b"body")
    foreign = Codec()
    foreign.use_registry({}, fetch_schema=lambda _id: {"type": "record", "name": "Order", "fields": []})
    with pytest.raises(DecodeError, match="names Order, not one of our records"):
        foreign.decode(b"\x00\x00\x00\x00\x09")

    def unreachable(_id: int) -> dict:
        raise OSError("connection refused")

    down = Codec()
    down.use_registry({}, fetch_schema=unreachable)
    with pytest.raises(DecodeError, match="did not give it: connection refused"):
        down.decode(b"\x00\x00\x00\x00\x09")
