"""A consumed record's value -> a Python object, by the rule's record format. Pure apart from the
schema lookup, which goes through a port (adapters/schema_registry.py caches what it fetched).

- JSON: UTF-8 JSON text.
- AVRO with an inline schema: the binary encoding of one datum of that schema (no framing).
- AVRO with a schema registry: Confluent's wire format, magic byte 0, the 4-byte big-endian schema
  id, then the binary datum; the writer's schema is fetched by id (GET /schemas/ids/{id}).
"""

from __future__ import annotations

import io
import struct
from typing import Any, Protocol

import fastavro
import orjson

from mailstream.gateway.triggers.rule import TriggerRule


class Undecodable(ValueError):
    """The record's bytes are not a record of the rule's format: the reason, for the dead letter."""


class SchemaLookup(Protocol):
    async def schema(self, registry_url: str, schema_id: int) -> Any: ...


def decode_json(value: bytes | None) -> Any:
    if value is None:
        raise Undecodable("bad JSON: the record has no value (a tombstone)")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Undecodable(f"bad JSON: {exc}") from None


def read_avro(value: bytes, schema: Any, what: str) -> Any:
    stream = io.BytesIO(value)
    try:
        datum = fastavro.schemaless_reader(stream, schema, None)
    except Exception as exc:  # fastavro raises many kinds on bad bytes (EOFError, UnicodeDecodeError, ...)
        raise Undecodable(f"bad Avro ({what}): {type(exc).__name__}: {exc}") from None
    if stream.tell() != len(value):
        raise Undecodable(f"bad Avro ({what}): {len(value) - stream.tell()} bytes left after the record")
    return datum


def registry_frame(value: bytes) -> tuple[int, bytes]:
    """(schema id, datum bytes) of a record in Confluent's wire format."""
    if len(value) < 5 or value[0] != 0:
        raise Undecodable("bad Avro: not in the schema registry's wire format (magic byte 0 + 4-byte schema id)")
    return struct.unpack(">I", value[1:5])[0], value[5:]


async def decode(rule: TriggerRule, value: bytes | None, schemas: SchemaLookup) -> Any:
    if rule.record_format == "JSON":
        return decode_json(value)
    if value is None:
        raise Undecodable("bad Avro: the record has no value (a tombstone)")
    if rule.parsed_schema is not None:
        return read_avro(value, rule.parsed_schema, "the rule's schema")
    schema_id, datum = registry_frame(value)
    assert rule.schema_registry_url is not None
    schema = await schemas.schema(rule.schema_registry_url, schema_id)
    if schema is None:
        raise Undecodable(f"bad Avro: schema id {schema_id} is not in the registry {rule.schema_registry_url}")
    return read_avro(datum, schema, f"schema id {schema_id}")
