"""A schema change must not break the readers already deployed (issue 20), judged as a schema
registry judges BACKWARD and FORWARD compatibility, on data:

- backward: the current schema reads what every earlier version wrote (a consumer upgraded
  before the producers, or replaying old records);
- forward: every earlier version reads what the current schema writes (a consumer not upgraded
  yet, e.g. an analyst's job built against the old schema).

Earlier versions are kept in avro/earlier/<file stem>.<n>.avsc. The fingerprints of the current
schemas are pinned in schema_fingerprints.json, so that changing a schema without keeping its
previous version there fails here and names what to do.
"""

import io
import json
from pathlib import Path

import fastavro
import pytest
from fastavro.read import SchemaResolutionError
from fastavro.utils import generate_many

from mailstream.schemas.codec import earlier_schemas, load_schema, schema_fingerprint
from mailstream.schemas.records import SCHEMA_FILES

pytestmark = pytest.mark.unit

PINNED = Path(__file__).with_name("schema_fingerprints.json")
SAMPLES = 200  # random records per pair: enough to meet every symbol of the schemas' small enums
TYPES = list(SCHEMA_FILES)


def fingerprints() -> dict[str, str]:
    return {SCHEMA_FILES[t]: schema_fingerprint(load_schema(t)).hex() for t in TYPES}


def readable(writer: dict, reader: dict) -> None:
    """Raises (fastavro's SchemaResolutionError, or a decode error) when `reader` cannot read
    what `writer` writes."""
    parsed_writer, parsed_reader = fastavro.parse_schema(writer), fastavro.parse_schema(reader)
    for record in generate_many(parsed_writer, SAMPLES):
        body = io.BytesIO()
        fastavro.schemaless_writer(body, parsed_writer, record)
        body.seek(0)
        fastavro.schemaless_reader(body, parsed_writer, parsed_reader)


def test_every_current_schema_is_pinned():
    pinned = json.loads(PINNED.read_text())
    changed = {name for name, value in fingerprints().items() if pinned.get(name) != value}
    assert not changed, (
        f"schemas changed: {sorted(changed)}. Keep each previous version as avro/earlier/<stem>.<n+1>.avsc"
        " (records it wrote stay on the topics), then pin the new fingerprints: "
        ".mailstream/venv/bin/python schemas/tests/test_compatibility.py"
    )


@pytest.mark.parametrize("record_type", TYPES, ids=lambda t: t.__name__)
def test_the_current_schema_reads_every_earlier_versions_data(record_type):
    for earlier in earlier_schemas(record_type):
        readable(writer=earlier, reader=load_schema(record_type))


@pytest.mark.parametrize("record_type", TYPES, ids=lambda t: t.__name__)
def test_every_earlier_version_reads_the_current_schemas_data(record_type):
    for earlier in earlier_schemas(record_type):
        readable(writer=load_schema(record_type), reader=earlier)


def test_the_check_catches_a_field_added_without_a_default_and_a_new_enum_symbol():
    current = load_schema(TYPES[0])
    required = {**current, "fields": [*current["fields"], {"name": "new_required", "type": "string"}]}
    with pytest.raises(SchemaResolutionError, match="new_required"):
        readable(writer=current, reader=required)  # not backward compatible

    def with_symbols(*symbols):
        kind = {"type": "enum", "name": "K", "symbols": list(symbols)}
        return {"type": "record", "name": "E", "fields": [{"name": "k", "type": kind}]}

    enum, grown = with_symbols("A"), with_symbols("A", "B")
    with pytest.raises(SchemaResolutionError):
        readable(writer=grown, reader=enum)  # not forward compatible: an old reader meets "B"


if __name__ == "__main__":  # pin the current fingerprints (after keeping the previous versions)
    PINNED.write_text(json.dumps(fingerprints(), indent=2, sort_keys=True) + "\n")
    print(f"pinned {len(fingerprints())} schemas in {PINNED}")
