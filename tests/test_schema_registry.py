"""The local stack's schema registry (deploy/local/schema_registry.py), run as `make run` runs it:
Confluent's REST API as stock clients use it, its compatibility checks, and what it keeps across a
restart; our producers' registration and the codec reading its ids."""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from mailstream.core.schema_registry import fetch_schema, read_with_schema_registry, use_schema_registry
from mailstream.schemas import TOPICS, EngagementKind, EngagementRecorded, codec
from mailstream.schemas.codec import Codec, load_schema
from mailstream.schemas.topics import ENGAGEMENT
from testkit import free_port

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[1] / "deploy/local/schema_registry.py"
ORDER = {"type": "record", "name": "Order", "namespace": "shop", "fields": [{"name": "id", "type": "long"}]}


@contextlib.contextmanager
def registry_process(data: Path):
    port = free_port()
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--port", str(port), "--data", str(data)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            assert process.poll() is None and time.monotonic() < deadline, "the registry did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def registry(tmp_path):
    with registry_process(tmp_path / "registry.json") as url:
        yield url


@pytest.fixture
def restore_codec():
    yield
    codec.use_registry({}, fetch_schema=None)
    codec.use_single_object_encoding()


def register(url: str, subject: str, schema: dict) -> httpx.Response:
    return httpx.post(f"{url}/subjects/{subject}/versions", json={"schema": json.dumps(schema)})


def with_field(schema: dict, field: dict) -> dict:
    changed = copy.deepcopy(schema)
    changed["fields"].append(field)
    return changed


def test_a_schema_gets_one_id_across_subjects_and_again_on_a_second_registration(registry):
    first = register(registry, "orders-value", ORDER).json()["id"]
    assert register(registry, "orders-value", ORDER).json()["id"] == first
    assert register(registry, "returns-value", ORDER).json()["id"] == first
    assert httpx.get(f"{registry}/subjects/orders-value/versions").json() == [1]
    assert httpx.get(f"{registry}/subjects").json() == ["orders-value", "returns-value"]
    latest = httpx.get(f"{registry}/subjects/orders-value/versions/latest").json()
    assert latest["id"] == first and latest["version"] == 1 and json.loads(latest["schema"]) == ORDER
    assert json.loads(httpx.get(f"{registry}/schemas/ids/{first}").json()["schema"]) == ORDER
    assert httpx.get(f"{registry}/schemas/ids/{first}/versions").json() == [
        {"subject": "orders-value", "version": 1},
        {"subject": "returns-value", "version": 1},
    ]
    found = httpx.post(f"{registry}/subjects/returns-value", json={"schema": json.dumps(ORDER)}).json()
    assert found["id"] == first and found["version"] == 1


def test_backward_compatibility_is_checked_on_registration_and_on_request(registry):
    register(registry, "orders-value", ORDER)
    required = with_field(ORDER, {"name": "total", "type": "long"})  # old data has no total: unreadable
    optional = with_field(ORDER, {"name": "note", "type": ["null", "string"], "default": None})
    check = httpx.post(
        f"{registry}/compatibility/subjects/orders-value/versions/latest", json={"schema": json.dumps(required)}
    ).json()
    assert check["is_compatible"] is False and "reader_field_missing_default_value (total)" in check["messages"][0]
    refused = register(registry, "orders-value", required)
    assert refused.status_code == 409 and refused.json()["error_code"] == 409
    assert "total" in refused.json()["message"]
    assert register(registry, "orders-value", optional).status_code == 200
    assert httpx.get(f"{registry}/subjects/orders-value/versions").json() == [1, 2]
    # FORWARD: the latest version reads the new one's data; a new required field is ignored by it
    httpx.put(f"{registry}/config/orders-value", json={"compatibility": "FORWARD"})
    assert register(registry, "orders-value", with_field(optional, {"name": "total", "type": "long"})).is_success
    assert register(registry, "orders-value", {**ORDER, "fields": []}).status_code == 409  # id has no default
    assert httpx.put(f"{registry}/config/orders-value", json={"compatibility": "FULL"}).json() == {
        "compatibility": "FULL"
    }
    assert httpx.get(f"{registry}/config/orders-value").json() == {"compatibilityLevel": "FULL"}
    assert httpx.get(f"{registry}/config").json() == {"compatibilityLevel": "BACKWARD"}


def test_bad_requests_get_the_registrys_error_codes(registry):
    assert httpx.get(f"{registry}/schemas/ids/999").json()["error_code"] == 40403
    assert httpx.get(f"{registry}/subjects/nope-value/versions").json()["error_code"] == 40401
    invalid = httpx.post(f"{registry}/subjects/x-value/versions", json={"schema": '{"type": "record"}'})
    assert invalid.status_code == 422 and invalid.json()["error_code"] == 42201
    protobuf = httpx.post(f"{registry}/subjects/x-value/versions", json={"schema": "{}", "schemaType": "PROTOBUF"})
    assert protobuf.status_code == 422 and "AVRO only" in protobuf.json()["message"]
    register(registry, "orders-value", ORDER)
    assert httpx.get(f"{registry}/subjects/orders-value/versions/2").json()["error_code"] == 40402


def test_subjects_and_ids_survive_a_restart(tmp_path):
    data = tmp_path / "registry.json"
    with registry_process(data) as url:
        first = register(url, "orders-value", ORDER).json()["id"]
        httpx.put(f"{url}/config", json={"compatibility": "NONE"})
    with registry_process(data) as url:
        assert json.loads(httpx.get(f"{url}/schemas/ids/{first}").json()["schema"]) == ORDER
        assert httpx.get(f"{url}/config").json() == {"compatibilityLevel": "NONE"}
        other = register(url, "orders-value", with_field(ORDER, {"name": "total", "type": "long"})).json()["id"]
        assert other == first + 1


def test_confluents_own_client_serializes_and_deserializes_through_it(registry):
    client = SchemaRegistryClient({"url": registry})
    serializer = AvroSerializer(client, json.dumps(ORDER))
    deserializer = AvroDeserializer(client)
    context = SerializationContext("orders", MessageField.VALUE)
    data = serializer({"id": 42}, context)
    assert data[:1] == b"\x00" and deserializer(data, context) == {"id": 42}
    assert client.get_latest_version("orders-value").schema_id == int.from_bytes(data[1:5], "big")


async def test_our_producers_register_every_topic_and_stock_readers_read_what_we_write(registry, restore_codec):
    await use_schema_registry(registry)
    async with httpx.AsyncClient(base_url=registry) as http:
        subjects = (await http.get("/subjects")).json()
    assert subjects == sorted(f"{t.name}-value" for t in TOPICS)
    record = EngagementRecorded(
        event_id="e-1",
        kind=EngagementKind.OPEN,
        message_id="m-1",
        account_id=7,
        recipient="a@example.com",
        occurred_at=datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
        custom_args={"order": "A-17"},
    )
    data = codec.encode(record)
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry}))
    values = deserializer(data, SerializationContext(ENGAGEMENT.name, MessageField.VALUE))
    assert values["message_id"] == "m-1" and values["kind"] == "OPEN" and values["custom_args"] == {"order": "A-17"}
    # a process that has not registered anything (events tail, export) looks the id up
    reader = Codec()
    reader.use_registry({}, fetch_schema=functools.partial(fetch_schema, registry))
    assert reader.decode(data, EngagementRecorded) == record
    schema_id = int.from_bytes(data[1:5], "big")
    async with httpx.AsyncClient(base_url=registry) as http:
        registered = json.loads((await http.get(f"/schemas/ids/{schema_id}")).json()["schema"])
    assert registered == load_schema(EngagementRecorded)


def test_a_reader_with_the_registry_still_reads_single_object_records(registry, restore_codec):
    record = EngagementRecorded(
        event_id="e-2",
        kind=EngagementKind.CLICK,
        message_id="m-2",
        account_id=7,
        recipient="a@example.com",
        occurred_at=datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
    )
    older = codec.encode(record)
    read_with_schema_registry(registry)
    assert codec.encode(record) == older  # reading through a registry does not change what is written
    assert codec.decode(older, EngagementRecorded) == record
