"""The one codec: typed records <-> Avro, in either of two wire formats.

- Avro single-object encoding (the default; Avro spec, "Single object encoding"): 0xC3 0x01,
  the 8-byte little-endian CRC-64-AVRO fingerprint of the writer's schema, the Avro body. The
  fingerprint names the writer schema, so a reader holding a newer schema still resolves older data.
- Confluent's wire format (with a schema registry; `use_registry`): the magic byte 0, the
  4-byte big-endian schema id the registry gave the writer's schema, the Avro body. Kafka
  Connect, ksqlDB, Spark, Flink and kcat read it with the registry.

Decoding accepts both, whichever is written: topics keep the older format's records during a
migration from one to the other.
"""

from __future__ import annotations

import dataclasses
import io
import json
import types
import typing
from collections.abc import Callable, Mapping
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import fastavro
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from mailstream.schemas.records import SCHEMA_FILES

MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
R = TypeVar("R")
SchemaFetch = Callable[[int], dict[str, Any]]  # a registry's schema id -> the Avro schema it names


class DecodeError(ValueError):
    """The bytes are not a record this codec knows."""


def load_schema(record_type: type) -> dict[str, Any]:
    text = resources.files("mailstream.schemas").joinpath("avro", SCHEMA_FILES[record_type]).read_text()
    return json.loads(text)


def earlier_schemas(record_type: type) -> list[dict[str, Any]]:
    """The schema's earlier versions (avro/earlier/<file stem>.<n>.avsc): records they wrote
    may still be on the topics, so every reader keeps decoding them."""
    stem = SCHEMA_FILES[record_type].removesuffix(".avsc")
    folder = resources.files("mailstream.schemas").joinpath("avro", "earlier")
    return [
        json.loads(f.read_text())
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.startswith(f"{stem}.") and f.name.endswith(".avsc")
    ]


def schema_fingerprint(schema: dict[str, Any]) -> bytes:
    parsed = parse_schema(schema, _write_hint=False)
    return int(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"), 16).to_bytes(8, "little")


class Codec:
    """Encodes each record with its current schema; decodes any registered writer schema."""

    def __init__(self) -> None:
        self._current: dict[type, tuple[bytes, Any]] = {}
        self._writers: dict[bytes, tuple[type, Any]] = {}
        self._by_name: dict[str, type] = {}  # the schema's full name -> its record type
        # Confluent's format: the ids this process writes with, the writer schemas of ids seen,
        # and how to look up an id not seen yet.
        self._registry_ids: dict[type, bytes] = {}
        self._registry_writers: dict[int, tuple[type, Any]] = {}
        self._fetch_schema: SchemaFetch | None = None
        for record_type in SCHEMA_FILES:
            schema = load_schema(record_type)
            self._by_name[full_name(schema)] = record_type
            parsed = parse_schema(schema)
            fp = schema_fingerprint(schema)
            self._current[record_type] = (fp, parsed)
            self._writers[fp] = (record_type, parsed)
            for earlier in earlier_schemas(record_type):
                self.register_writer_schema(record_type, earlier)

    def register_writer_schema(self, record_type: type, schema: dict[str, Any]) -> None:
        """Accept data written with an older (or other compatible) version of a schema."""
        self._writers[schema_fingerprint(schema)] = (record_type, parse_schema(schema))

    def use_registry(self, ids: Mapping[type, int], fetch_schema: SchemaFetch | None) -> None:
        """Write Confluent's wire format with the registry's `ids` for the current schemas (none:
        keep writing single-object encoding), and read ids not seen yet through `fetch_schema`."""
        self._registry_ids = {t: CONFLUENT_MAGIC + i.to_bytes(4, "big") for t, i in ids.items()}
        self._registry_writers.update({i: (t, self._current[t][1]) for t, i in ids.items()})
        self._fetch_schema = fetch_schema

    def use_single_object_encoding(self) -> None:
        self._registry_ids = {}

    def encode(self, record: Any) -> bytes:
        fp, parsed = self._current[type(record)]
        out = io.BytesIO()
        prefix = self._registry_ids.get(type(record))
        out.write(prefix or MAGIC + fp)
        fastavro.schemaless_writer(out, parsed, _to_avro(record))
        return out.getvalue()

    def decode(self, data: bytes | None, expected: type[R] | None = None) -> R:
        if data and len(data) >= 10 and data[:2] == MAGIC:
            writer = self._writers.get(data[2:10])
            if writer is None:
                raise DecodeError(f"unknown writer schema fingerprint {data[2:10].hex()}")
            body = data[10:]
        elif data and len(data) >= 5 and data[:1] == CONFLUENT_MAGIC:
            writer = self._registry_writer(int.from_bytes(data[1:5], "big"))
            body = data[5:]
        else:
            raise DecodeError("not an Avro record in single-object encoding or Confluent's wire format")
        record_type, writer_schema = writer
        if expected is not None and record_type is not expected:
            raise DecodeError(f"expected {expected.__name__}, got {record_type.__name__}")
        _, reader_schema = self._current[record_type]
        try:
            values = fastavro.schemaless_reader(io.BytesIO(body), writer_schema, reader_schema)
        except Exception as exc:  # fastavro raises several types for a truncated or corrupt body
            raise DecodeError(f"corrupt {record_type.__name__} body: {exc}") from exc
        return _from_avro(record_type, values)

    def _registry_writer(self, schema_id: int) -> tuple[type, Any]:
        writer = self._registry_writers.get(schema_id)
        if writer is not None:
            return writer
        if self._fetch_schema is None:
            raise DecodeError(f"schema id {schema_id} (Confluent's wire format): no schema registry is configured")
        try:
            schema = self._fetch_schema(schema_id)
        except Exception as exc:  # the registry's client raises its own types; the record is not ours to judge
            raise DecodeError(f"schema id {schema_id}: the schema registry did not give it: {exc}") from exc
        record_type = self._by_name.get(full_name(schema))
        if record_type is None:
            raise DecodeError(f"schema id {schema_id} names {full_name(schema)}, not one of our records")
        self._registry_writers[schema_id] = writer = (record_type, parse_schema(schema))
        return writer


def full_name(schema: dict[str, Any]) -> str:
    name = schema.get("name", "")
    return name if "." in name or not schema.get("namespace") else f"{schema['namespace']}.{name}"


def _to_avro(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


@cache
def _converters(record_type: type) -> dict[str, Any]:
    """Field name -> callable turning an Avro value back into the typed field value."""
    hints = typing.get_type_hints(record_type)
    converters: dict[str, Any] = {}
    for name, hint in hints.items():
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint
        if isinstance(base, type) and issubclass(base, StrEnum):
            converters[name] = base
        elif typing.get_origin(base) is tuple:
            converters[name] = tuple
    return converters


def _from_avro(record_type: type[R], values: dict[str, Any]) -> R:
    known = {f.name for f in dataclasses.fields(record_type)}
    kwargs = {k: v for k, v in values.items() if k in known}
    for name, convert in _converters(record_type).items():
        if kwargs.get(name) is not None:
            kwargs[name] = convert(kwargs[name])
    return record_type(**kwargs)


codec = Codec()
encode = codec.encode
decode = codec.decode
