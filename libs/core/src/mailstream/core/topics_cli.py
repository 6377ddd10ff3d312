"""`mailstream topics create|list`, `mailstream events tail` and `mailstream events export`
(events_export.py): the registry's topics, administered and read (tools, not contracts: they live
in core, the registry in schemas)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from mailstream.core import events_export
from mailstream.schemas.codec import DecodeError, decode
from mailstream.schemas.topics import BY_NAME, TOPICS


async def create_topics(bootstrap: str, replication: int = 1) -> list[str]:
    """Create every registry topic that is missing and set the registry's configs on the others;
    returns the names created. Idempotent."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in TOPICS if t.name not in existing]
        if missing:
            new = [NewTopic(t.name, t.partitions, replication, topic_configs=t.configs) for t in missing]
            response = await admin.create_topics(new)
            for name, code, *_ in getattr(response, "topic_errors", getattr(response, "topic_error_codes", [])):
                if code not in (0, TopicAlreadyExistsError.errno):
                    raise RuntimeError(f"creating topic {name} failed with Kafka error {code}")
        present = [t for t in TOPICS if t.name in existing]
        if present:
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t.name, configs=t.configs) for t in present]
            )
        return [t.name for t in missing]
    finally:
        await admin.close()


async def tail(bootstrap: str, topic: str, as_json: bool, from_beginning: bool, limit: int | None) -> None:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    seen = 0
    try:
        async for msg in consumer:
            try:
                record = decode(msg.value)
                body: Any = events_export.jsonable(asdict(record))
                kind = type(record).__name__
            except DecodeError as exc:
                body, kind = {"undecodable": str(exc)}, "?"
            if as_json:
                line = {
                    "topic": msg.topic,
                    "partition": msg.partition,
                    "offset": msg.offset,
                    "key": events_export.jsonable(msg.key),
                    "type": kind,
                    "value": body,
                }
                print(json.dumps(line), flush=True)
            else:
                print(f"{msg.topic}[{msg.partition}]@{msg.offset} {kind} {body}", flush=True)
            seen += 1
            if limit is not None and seen >= limit:
                return
    finally:
        await consumer.stop()


def topics_command(subparsers: argparse._SubParsersAction, settings: Any) -> None:
    bootstrap_default = settings.kafka_bootstrap
    topics = subparsers.add_parser("topics", help="create or list the registry's Kafka topics")
    actions = topics.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create missing topics (idempotent)")
    create.set_defaults(run=lambda a: _print_created(asyncio.run(create_topics(a.bootstrap))))
    listing = actions.add_parser("list", help="print the registry")
    listing.set_defaults(run=lambda a: _print_registry())
    for p in (create, listing):
        p.add_argument("--bootstrap", default=bootstrap_default)

    events = subparsers.add_parser("events", help="read a topic, decoded with the repository's schemas")
    ev_actions = events.add_subparsers(dest="action", required=True)
    tail_p = ev_actions.add_parser("tail", help="print records of a topic as they arrive")
    tail_p.add_argument("--topic", required=True, choices=sorted(BY_NAME))
    tail_p.add_argument("--json", action="store_true", help="one JSON object per line")
    tail_p.add_argument("--from-beginning", action="store_true")
    tail_p.add_argument("--limit", type=int, default=None, help="stop after this many records")
    tail_p.add_argument("--bootstrap", default=bootstrap_default)
    tail_p.set_defaults(run=lambda a: asyncio.run(tail(a.bootstrap, a.topic, a.json, a.from_beginning, a.limit)))

    export_p = ev_actions.add_parser("export", help="write a topic's records between two times to a file")
    export_p.add_argument("--topic", required=True, choices=sorted(BY_NAME))
    export_p.add_argument("--since", type=events_export.parse_time, help="ISO 8601 (UTC if no zone); default: oldest")
    export_p.add_argument("--until", type=events_export.parse_time, help="ISO 8601 (UTC if no zone); default: now")
    export_p.add_argument("--format", required=True, choices=events_export.FORMATS)
    export_p.add_argument("--out", help="the file to write (default: standard output; parquet needs a file)")
    export_p.add_argument("--bootstrap", default=bootstrap_default)
    export_p.set_defaults(run=_run_export)


def _run_export(a: argparse.Namespace) -> None:
    out, close = events_export.open_out(a.out, a.format)
    try:
        asyncio.run(
            events_export.export(
                a.bootstrap,
                a.topic,
                out,
                a.format,
                since=a.since,
                until=a.until,
                progress=events_export.Progress(),
            )
        )
    finally:
        close()


def _print_created(names: list[str]) -> None:
    print("created: " + ", ".join(names) if names else "all topics already exist", file=sys.stderr)


def _print_registry() -> None:
    for t in TOPICS:
        print(f"{t.name}\t{t.partitions} partitions\tkey: {t.key}\tvalue: {t.value_type.__name__}")
